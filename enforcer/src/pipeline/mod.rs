//! The event pipeline: ring-buffer bytes -> checked decode -> event JSON -> rule evaluation ->
//! audit records. The engine loop (`engine.rs`) drives it. A successful exec is built in typed
//! form (`exec_typed`, its rule fields in `exec_fields`) and becomes JSON only when it has to.

pub mod decode;
pub mod env_evidence;
pub mod event_json;
pub mod exec_event;
pub mod exec_fields;
pub mod exec_typed;
pub mod file_event;
pub mod kernel_event;
pub mod lexical_path;
pub mod net_event;
pub mod outcome;
pub mod payload_event;
pub mod process_event;
pub mod tamper_event;
