//! Turns decoded `ForkRecord`s and `ExitRecord`s into event JSON (`fork.child.pid`,
//! `exit.code`, `exit.signal`, `exit.runtime`, ...).

use enforcer_common::process::{ExitRecord, ForkRecord};
use serde_json::{Value, json};

use super::exec_event::{hook_name, process_json};

/// The event JSON of a fork record (the header's process is the parent).
pub fn fork_event(rec: &ForkRecord, ts: &str) -> Value {
    json!({
        "kind": "fork",
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
        "fork": { "child": { "pid": rec.child_tgid, "start_ns": rec.child_start_ns } },
    })
}

/// The exit code and terminating signal of a wait status (`task->exit_code`).
pub fn split_status(status: u32) -> (u32, u32, bool) {
    let signal = status & 0x7f;
    let core = status & 0x80 != 0;
    let code = if signal == 0 { (status >> 8) & 0xff } else { 0 };
    (code, signal, core)
}

/// The event JSON of an exit record.
pub fn exit_event(rec: &ExitRecord, ts: &str) -> Value {
    let (code, signal, core) = split_status(rec.exit_code);
    json!({
        "kind": "exit",
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
        "exit": {
            "code": code,
            "signal": signal,
            "core_dumped": core,
            "start_ns": rec.start_ns,
            "runtime": rec.header.timestamp_ns.saturating_sub(rec.start_ns),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::decode::{test_exit_record, test_fork_record};

    #[test]
    fn wait_statuses_split_into_code_and_signal() {
        assert_eq!(split_status(0), (0, 0, false));
        assert_eq!(split_status(3 << 8), (3, 0, false));
        assert_eq!(split_status(9), (0, 9, false));
        assert_eq!(split_status(0x80 | 11), (0, 11, true));
    }

    #[test]
    fn lifecycle_events_have_the_policy_shape() {
        let fork = test_fork_record(77, 40);
        let ev = fork_event(&fork, "t");
        assert_eq!(ev["fork"]["child"]["pid"], 77);
        assert_eq!(ev["process"]["pid"], 10);
        let exit = test_exit_record(2 << 8, 40);
        let ev = exit_event(&exit, "t");
        assert_eq!(ev["exit"]["code"], 2);
        assert_eq!(ev["exit"]["signal"], 0);
        assert_eq!(ev["exit"]["runtime"], 2, "header at 42 ns, start at 40 ns");
        let parsed = enforcer_policy::Event::from_json(&ev);
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
