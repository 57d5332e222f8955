//! The event JSON of a decoded message (the object under the `"dns"` key). The policy reads
//! `/dns/question/name`, `/dns/question/type`, `/dns/is_response`, `/dns/rcode` and
//! `/dns/answers/*/ip`.

use serde_json::{Map, Value, json};

use super::{DnsAnswer, DnsMessage, DnsQuestion};

pub(super) fn message(msg: &DnsMessage) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(msg.id));
    out.insert("is_response".into(), json!(msg.is_response));
    out.insert("opcode".into(), json!(msg.opcode));
    out.insert("rcode".into(), json!(msg.rcode));
    if let Some(first) = msg.questions.first() {
        out.insert("question".into(), question(first));
    }
    out.insert(
        "questions".into(),
        Value::Array(msg.questions.iter().map(question).collect()),
    );
    out.insert(
        "answers".into(),
        Value::Array(msg.answers.iter().map(answer).collect()),
    );
    out.insert("truncated_sections".into(), json!(msg.truncated_sections));
    Value::Object(out)
}

fn question(q: &DnsQuestion) -> Value {
    json!({"name": q.name, "type": q.qtype})
}

fn answer(a: &DnsAnswer) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(a.name));
    out.insert("type".into(), json!(a.rtype));
    out.insert("ttl".into(), json!(a.ttl));
    if let Some(ip) = a.ip {
        out.insert("ip".into(), json!(ip.to_string()));
    }
    out.insert("data".into(), json!(a.data));
    Value::Object(out)
}
