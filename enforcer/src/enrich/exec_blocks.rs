//! Completes an exec's arguments and environment the kernel truncated. The exec record carries
//! the first `ARGS_LEN` (512) bytes of the command line and the first `ENV_LEN` (2 KiB) of the
//! environment block; a miner could push its pool URL past them with padding (F2 and F4
//! "padded"). When the record says so (`exec.truncated.args`, `exec.env_truncated`), the whole
//! block is read from `/proc/<tgid>/cmdline` or `environ` (at most [`PROC_BLOCK_CAP`] bytes) and
//! replaces the kernel's copy when it starts with the entries the kernel copied (the same
//! process image: not a reused PID). Best effort, after the exec: a process that is gone, or
//! that rewrote the block in memory before the read, keeps the kernel's prefix; the event says
//! which source it carries (`exec.args_source`, `exec.env_source`: `kernel` or `proc`).

use std::path::Path;

use serde_json::Value;

use super::proc_read::{nul_entries, read_bounded};

/// Most bytes of one block read from `/proc` (the rest is flagged truncated).
pub const PROC_BLOCK_CAP: usize = 64 * 1024;

/// Replaces a truncated `exec.envs` of `event` by the environment of process `tgid` under
/// `proc_root`, when that environment starts with the kernel's entries. Leaves events whose
/// environment is complete or absent as they are.
pub fn complete_envs(event: &mut Value, proc_root: &Path, tgid: u32) {
    let Some(Value::Object(exec)) = event.get_mut("exec") else {
        return;
    };
    if exec.get("env_truncated") != Some(&Value::Bool(true)) {
        return;
    }
    let kernel: Vec<&str> = match exec.get("envs") {
        Some(Value::Array(envs)) => envs.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let Some((entries, truncated)) = read_block(&proc_root.join(tgid.to_string()), "environ")
    else {
        exec.insert("env_source".into(), Value::from("kernel"));
        return;
    };
    if !starts_with_kernel_entries(&entries, &kernel) {
        exec.insert("env_source".into(), Value::from("kernel"));
        return;
    }
    exec.insert("envs".into(), Value::from(entries));
    exec.insert("env_truncated".into(), Value::from(truncated));
    exec.insert("env_source".into(), Value::from("proc"));
}

/// Replaces a truncated `exec.argv0` and `exec.args` of `event` by the command line of process
/// `tgid` under `proc_root`, when it starts with the kernel's entries (`argv[0]` first).
/// Leaves events whose arguments are complete or absent as they are.
pub fn complete_args(event: &mut Value, proc_root: &Path, tgid: u32) {
    let Some(Value::Object(exec)) = event.get_mut("exec") else {
        return;
    };
    if exec.get("truncated").and_then(|t| t.get("args")) != Some(&Value::Bool(true)) {
        return;
    }
    let Some(argv0) = exec.get("argv0").and_then(Value::as_str) else {
        return;
    };
    let mut kernel = vec![argv0];
    if let Some(Value::Array(args)) = exec.get("args") {
        kernel.extend(args.iter().filter_map(Value::as_str));
    }
    let completed = read_block(&proc_root.join(tgid.to_string()), "cmdline")
        .filter(|(entries, _)| starts_with_kernel_entries(entries, &kernel));
    let Some((mut entries, truncated)) = completed else {
        exec.insert("args_source".into(), Value::from("kernel"));
        return;
    };
    let args = entries.split_off(1);
    exec.insert("argv0".into(), Value::from(entries.pop()));
    exec.insert("args".into(), Value::from(args));
    if let Some(Value::Object(flags)) = exec.get_mut("truncated") {
        flags.insert("args".into(), Value::from(truncated));
    }
    exec.insert("args_source".into(), Value::from("proc"));
}

/// The entries of `<proc_dir>/<file>` (NUL separated, at most [`PROC_BLOCK_CAP`] bytes) and
/// whether there was more; `None` when it cannot be read.
fn read_block(proc_dir: &Path, file: &str) -> Option<(Vec<String>, bool)> {
    let mut bytes = read_bounded(&proc_dir.join(file), PROC_BLOCK_CAP as u64 + 1)?;
    let truncated = bytes.len() > PROC_BLOCK_CAP;
    bytes.truncate(PROC_BLOCK_CAP);
    Some((nul_entries(&bytes), truncated))
}

/// Whether `entries` starts with the kernel's: each complete kernel entry equal, the last one
/// (possibly cut by the kernel's byte limit) a prefix of its counterpart.
fn starts_with_kernel_entries(entries: &[String], kernel: &[&str]) -> bool {
    let Some((last, complete)) = kernel.split_last() else {
        return true;
    };
    complete.len() < entries.len()
        && complete.iter().zip(entries).all(|(k, e)| *k == e)
        && entries
            .get(complete.len())
            .is_some_and(|e| e.starts_with(last))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn proc_with(tgid: u32, environ: &[u8]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(tgid.to_string());
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("environ"), environ).unwrap();
        root
    }

    fn truncated_event(envs: &[&str]) -> Value {
        json!({ "exec": { "envs": envs, "env_truncated": true } })
    }

    #[test]
    fn a_truncated_environment_is_completed_from_proc() {
        let root = proc_with(
            7,
            b"AAA_PAD=xxxx\0POOL_URL=stratum+tcp://p:3333\0PATH=/bin\0",
        );
        let mut event = truncated_event(&["AAA_PAD=xx"]);
        complete_envs(&mut event, root.path(), 7);
        assert_eq!(
            event["exec"]["envs"],
            json!(["AAA_PAD=xxxx", "POOL_URL=stratum+tcp://p:3333", "PATH=/bin"])
        );
        assert_eq!(event["exec"]["env_truncated"], false);
        assert_eq!(event["exec"]["env_source"], "proc");
    }

    #[test]
    fn another_process_image_under_the_pid_is_not_used() {
        let root = proc_with(7, b"OTHER=1\0POOL_URL=x\0");
        let mut event = truncated_event(&["AAA_PAD=xx"]);
        complete_envs(&mut event, root.path(), 7);
        assert_eq!(event["exec"]["envs"], json!(["AAA_PAD=xx"]));
        assert_eq!(event["exec"]["env_truncated"], true);
        assert_eq!(event["exec"]["env_source"], "kernel");
    }

    #[test]
    fn a_gone_process_keeps_the_kernel_prefix() {
        let root = tempfile::tempdir().unwrap();
        let mut event = truncated_event(&["A=1", "B=2"]);
        complete_envs(&mut event, root.path(), 9);
        assert_eq!(event["exec"]["envs"], json!(["A=1", "B=2"]));
        assert_eq!(event["exec"]["env_source"], "kernel");
    }

    #[test]
    fn complete_environments_and_events_without_one_are_left_alone() {
        let root = proc_with(7, b"A=1\0B=2\0");
        let mut complete = json!({ "exec": { "envs": ["A=1"], "env_truncated": false } });
        let before = complete.clone();
        complete_envs(&mut complete, root.path(), 7);
        assert_eq!(complete, before);
        let mut none = json!({ "exec": { "args": [] } });
        let before = none.clone();
        complete_envs(&mut none, root.path(), 7);
        assert_eq!(none, before);
    }

    #[test]
    fn truncated_arguments_are_completed_from_the_command_line() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("7");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("cmdline"),
            b"kworker\0--\0xxxxxxxx\0--url=stratum+tcp://p:3333\0",
        )
        .unwrap();
        let mut event = json!({ "exec": {
            "argv0": "kworker", "args": ["--", "xxx"], "truncated": { "args": true } } });
        complete_args(&mut event, root.path(), 7);
        assert_eq!(event["exec"]["argv0"], "kworker");
        assert_eq!(
            event["exec"]["args"],
            json!(["--", "xxxxxxxx", "--url=stratum+tcp://p:3333"])
        );
        assert_eq!(event["exec"]["truncated"]["args"], false);
        assert_eq!(event["exec"]["args_source"], "proc");
        // Another image under the pid (argv[0] differs): the kernel's prefix stays.
        let mut other = json!({ "exec": {
            "argv0": "other", "args": ["--"], "truncated": { "args": true } } });
        complete_args(&mut other, root.path(), 7);
        assert_eq!(other["exec"]["args"], json!(["--"]));
        assert_eq!(other["exec"]["args_source"], "kernel");
        // Complete arguments are left alone.
        let mut complete = json!({ "exec": {
            "argv0": "kworker", "args": ["--"], "truncated": { "args": false } } });
        let before = complete.clone();
        complete_args(&mut complete, root.path(), 7);
        assert_eq!(complete, before);
    }

    #[test]
    fn the_read_is_capped_and_the_cap_is_flagged() {
        let mut environ = b"A=".to_vec();
        environ.resize(PROC_BLOCK_CAP + 100, b'x');
        let root = proc_with(7, &environ);
        let mut event = truncated_event(&["A=xx"]);
        complete_envs(&mut event, root.path(), 7);
        assert_eq!(event["exec"]["env_truncated"], true);
        assert_eq!(event["exec"]["env_source"], "proc");
        let envs = event["exec"]["envs"].as_array().unwrap();
        assert_eq!(envs[0].as_str().unwrap().len(), PROC_BLOCK_CAP);
    }
}
