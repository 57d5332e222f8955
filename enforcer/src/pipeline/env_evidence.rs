//! What of an exec's environment goes into the records the daemon writes: the entries some
//! rule tests (`EntrySelector`), nothing else; an environment also holds tokens and passwords,
//! and the audit log is no place for them. `exec.envs_omitted` counts what was left out. The
//! handler's general path evaluates the whole environment, then selects here; the typed exec
//! event selects as it is built (`exec_typed::Envs`), which changes no rule's outcome.

use enforcer_policy::selection::EntrySelector;
use serde_json::Value;

/// Keeps in `event`'s `exec.envs` only the entries `selector` selects; sets
/// `exec.envs_omitted` to the number removed (when there are any).
pub fn keep_selected_envs(event: &mut Value, selector: &EntrySelector) {
    let Some(exec) = event.get_mut("exec").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(Value::Array(envs)) = exec.get_mut("envs") else {
        return;
    };
    let before = envs.len();
    envs.retain(|entry| entry.as_str().is_some_and(|e| selector.selects(e)));
    let omitted = before - envs.len();
    if omitted > 0 {
        exec.insert("envs_omitted".into(), Value::from(omitted));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn only_tested_entries_stay_and_the_rest_is_counted() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: a\n    expression: exec.envs startswith \"POOL_URL=\"\n    action: alert\n",
        )
        .unwrap();
        let selector = policy.entry_selector("exec.envs");
        let mut event = json!({ "exec": { "envs": [
            "AWS_SECRET_ACCESS_KEY=abc", "POOL_URL=stratum+tcp://p:1", "PATH=/bin", 7
        ] } });
        keep_selected_envs(&mut event, &selector);
        assert_eq!(event["exec"]["envs"], json!(["POOL_URL=stratum+tcp://p:1"]));
        assert_eq!(event["exec"]["envs_omitted"], 3);

        let mut kept = json!({ "exec": { "envs": ["POOL_URL=x"] } });
        keep_selected_envs(&mut kept, &selector);
        assert!(kept["exec"].get("envs_omitted").is_none(), "{kept}");
        let mut other = json!({ "open": { "flags": 1 } });
        keep_selected_envs(&mut other, &selector);
        assert_eq!(other, json!({ "open": { "flags": 1 } }));
    }
}
