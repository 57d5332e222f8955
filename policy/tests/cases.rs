//! Data-driven cases: each `cases/NAME.yaml` policy has a `cases/NAME.json` holding either
//! `{"events":[{"event":{...},"expect":["rule-id",...]}]}` (matches, as a set of ids) or
//! `{"diagnostics":[{"code":"unknown-field","at":"line:col"}]}` (every diagnostic, in order).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

mod common;

use enforcer_policy::load;

#[test]
fn all_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "cases missing");
    for policy in names {
        let expect: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(policy.with_extension("json")).unwrap())
                .unwrap();
        let name = policy.file_name().unwrap().to_string_lossy().to_string();
        match (
            load(&policy),
            expect.get("events"),
            expect.get("diagnostics"),
        ) {
            (Ok(p), Some(events), None) => {
                for (i, case) in events.as_array().unwrap().iter().enumerate() {
                    common::check_case(&p, case, &format!("{name} event {i}"));
                }
            }
            (Err(d), None, Some(diags)) => {
                let got: Vec<(String, String)> = d
                    .items()
                    .iter()
                    .map(|x| {
                        let loc = d.location(x);
                        let pos = loc
                            .rsplit(&format!("{name}:"))
                            .next()
                            .unwrap_or("")
                            .to_string();
                        (x.code.name().to_string(), pos)
                    })
                    .collect();
                let want: Vec<(String, String)> = diags
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        (
                            v["code"].as_str().unwrap().to_string(),
                            v["at"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                assert_eq!(got, want, "{name}:\n{d}");
            }
            (Ok(_), _, _) => panic!("{name}: loaded, but diagnostics were expected"),
            (Err(d), _, _) => panic!("{name}: unexpected diagnostics:\n{d}"),
        }
    }
}
