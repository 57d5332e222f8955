//! Decoded events as the evaluator sees them: [`Event::from_json`] reads every schema field of
//! the event's kind (plus the common `process.*` fields) from a JSON object into a flat slot
//! table indexed by [`FieldId`], so evaluation never walks JSON. Input is bounded: strings are
//! cut at [`MAX_STRING`] bytes, lists at [`MAX_LIST`] items. An audit record
//! `{"type":"event","event":{...}}` is accepted as well as the bare event. Addresses are
//! canonical: an IPv4-mapped IPv6 address is read as its IPv4 address ([`crate::net`]).

use std::net::IpAddr;
use std::str::FromStr;

use serde_json::Value;

use crate::lexer::parse_duration;
use crate::net;
use crate::schema::{self, Derive, FieldId, Kind, Locator, Type};

/// Longest string value kept (longer ones are cut at a character boundary).
pub const MAX_STRING: usize = 4096;
/// Most list items kept.
pub const MAX_LIST: usize = 1024;

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// String.
    Str(Box<str>),
    /// Integer.
    Int(i64),
    /// Bool.
    Bool(bool),
    /// Duration in nanoseconds.
    Dur(u64),
    /// Address.
    Ip(IpAddr),
    /// Several values (list fields).
    List(Vec<Val>),
}

/// What a typed event (one the daemon holds as a Rust struct, not as JSON) gives for one
/// field, [`Event::from_typed`].
#[derive(Debug, Clone, PartialEq)]
pub enum Given {
    /// The field's value, as decoding its JSON would give it ([`Val::text`], [`Val::texts`]).
    Value(Val),
    /// The event has no value for the field (a JSON member missing or `null`).
    Absent,
    /// The typed event cannot give this field: the caller decodes the event's JSON instead.
    Unknown,
}

impl Val {
    /// A string value, cut at [`MAX_STRING`] bytes as decoding cuts it.
    pub fn text(s: &str) -> Val {
        Val::Str(cut(s))
    }

    /// A list of strings, at most [`MAX_LIST`] of them, each cut as [`Val::text`] does.
    pub fn texts<'a>(items: impl IntoIterator<Item = &'a str>) -> Val {
        Val::List(items.into_iter().take(MAX_LIST).map(Val::text).collect())
    }
}

/// Why an event could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    /// The JSON is not an object.
    #[error("an event must be a JSON object")]
    NotAnObject,
    /// No `kind` member.
    #[error("the event has no string member \"kind\"")]
    MissingKind,
    /// Unknown `kind`.
    #[error("unknown event kind {0:?}")]
    UnknownKind(String),
    /// A member has the wrong JSON type.
    #[error("field {field} must be {expected}")]
    FieldType {
        /// The field.
        field: &'static str,
        /// The expected type.
        expected: &'static str,
    },
}

/// A decoded event.
#[derive(Debug, Clone)]
pub struct Event {
    kind: Kind,
    slots: Vec<Option<Val>>,
    /// An `is_public` field derived from an address (not carried by the event): the field and
    /// the address, so a policy's extra public ranges can be applied when it evaluates.
    derived_public: Option<(FieldId, IpAddr)>,
}

impl Event {
    /// Decodes a bare event or an audit record holding one under `"event"`.
    pub fn from_json(value: &Value) -> Result<Event, EventError> {
        Event::decode(value, None)
    }

    /// Like [`Event::from_json`], reading only the fields whose [`FieldId`] is `true` in
    /// `read` (the fields a policy's rules test, [`crate::CompiledPolicy::decode_event`]):
    /// the others stay absent, and a wrong JSON type in them is not an error.
    pub fn from_json_reading(value: &Value, read: &[bool]) -> Result<Event, EventError> {
        Event::decode(value, Some(read))
    }

    fn decode(value: &Value, read: Option<&[bool]>) -> Result<Event, EventError> {
        let obj = value.as_object().ok_or(EventError::NotAnObject)?;
        if obj.get("kind").is_none()
            && let Some(inner) = obj.get("event")
        {
            return Event::decode(inner, read);
        }
        let kind_name = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or(EventError::MissingKind)?;
        let kind = Kind::from_name(kind_name)
            .ok_or_else(|| EventError::UnknownKind(kind_name.to_string()))?;
        let mut slots = vec![None; schema::FIELDS.len()];
        let mut derived_public = None;
        for (i, def) in schema::FIELDS.iter().enumerate() {
            if def.kind.is_some_and(|k| k != kind)
                || read.is_some_and(|r| !r.get(i).copied().unwrap_or(false))
            {
                continue;
            }
            let mut v = match def.locator {
                Locator::Ptr(p) => pointer(value, p)
                    .map(|j| convert(j, def))
                    .transpose()?
                    .flatten(),
                Locator::Each(arr, item) => match pointer(value, arr) {
                    Some(Value::Array(items)) => {
                        let mut out = Vec::new();
                        for it in items.iter().take(MAX_LIST) {
                            if let Some(x) = pointer(it, item)
                                .map(|j| scalar(j, def))
                                .transpose()?
                                .flatten()
                            {
                                out.push(x);
                            }
                        }
                        Some(Val::List(out))
                    }
                    Some(Value::Null) | None => None,
                    Some(_) => {
                        return Err(EventError::FieldType {
                            field: def.name,
                            expected: "an array",
                        });
                    }
                },
            };
            if v.is_none()
                && let Some(d) = def.derive
            {
                v = derive(value, d);
                if let (Derive::IsPublic(p), Some(_), Ok(id)) = (d, &v, FieldId::try_from(i)) {
                    derived_public = address(value, p).map(|ip| (id, ip));
                }
            }
            if def.name == schema::DNS_NAME_FIELD
                && let Some(Val::Str(s)) = &v
            {
                v = Some(dns_name(s));
            }
            slots[i] = v;
        }
        Ok(Event {
            kind,
            slots,
            derived_public,
        })
    }

    /// Builds an event of `kind` from a typed source instead of JSON: `get` gives each field
    /// of `read` (ids; fields of other kinds are skipped) by name, as decoding the event's JSON
    /// would. `None` when `get` answers [`Given::Unknown`] for one of them, or when one is
    /// derived from an address (`is_public`), which only decoding computes.
    pub fn from_typed(
        kind: Kind,
        read: &[FieldId],
        mut get: impl FnMut(&'static str) -> Given,
    ) -> Option<Event> {
        let mut slots = vec![None; schema::FIELDS.len()];
        for &id in read {
            let def = schema::def(id);
            if def.kind.is_some_and(|k| k != kind) {
                continue;
            }
            if matches!(def.derive, Some(Derive::IsPublic(_))) {
                return None;
            }
            let Some(slot) = slots.get_mut(usize::from(id)) else {
                continue;
            };
            *slot = match get(def.name) {
                Given::Value(Val::Str(s)) if def.name == schema::DNS_NAME_FIELD => {
                    Some(dns_name(&s))
                }
                Given::Value(v) => Some(canonical_val(v)),
                Given::Absent => None,
                Given::Unknown => return None,
            };
        }
        Some(Event {
            kind,
            slots,
            derived_public: None,
        })
    }

    /// The event's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The value of field `id`, `None` when absent.
    pub fn get(&self, id: FieldId) -> Option<&Val> {
        self.slots.get(usize::from(id)).and_then(Option::as_ref)
    }

    /// Builds an event directly (tests, benchmarks): `values` are (field name, value) pairs;
    /// unknown names are ignored. Nothing is derived; addresses are made canonical
    /// ([`crate::net::canonical`]) as when decoding.
    pub fn from_values(kind: Kind, values: impl IntoIterator<Item = (&'static str, Val)>) -> Event {
        let mut slots = vec![None; schema::FIELDS.len()];
        for (name, v) in values {
            if let Some(id) = schema::lookup(name) {
                slots[usize::from(id)] = Some(canonical_val(v));
            }
        }
        Event {
            kind,
            slots,
            derived_public: None,
        }
    }

    /// The `is_public` field this event derived from an address (rather than carried), with
    /// that address.
    pub(crate) fn derived_public(&self) -> Option<(FieldId, IpAddr)> {
        self.derived_public
    }

    /// A copy with field `id` set to `v`.
    pub(crate) fn with_value(&self, id: FieldId, v: Val) -> Event {
        let mut e = self.clone();
        if let Some(slot) = e.slots.get_mut(usize::from(id)) {
            *slot = Some(v);
        }
        e
    }
}

/// A DNS name as rules compare it: without the trailing dot, lowercase.
fn dns_name(name: &str) -> Val {
    Val::Str(name.trim_end_matches('.').to_ascii_lowercase().into())
}

fn canonical_val(v: Val) -> Val {
    match v {
        Val::Ip(a) => Val::Ip(net::canonical(a)),
        Val::List(items) => Val::List(items.into_iter().map(canonical_val).collect()),
        other => other,
    }
}

/// The (canonical) address at pointer `p`.
fn address(root: &Value, p: &str) -> Option<IpAddr> {
    IpAddr::from_str(pointer(root, p)?.as_str()?)
        .ok()
        .map(net::canonical)
}

fn cut(s: &str) -> Box<str> {
    if s.len() <= MAX_STRING {
        return s.into();
    }
    let mut end = MAX_STRING;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].into()
}

fn convert(j: &Value, def: &'static schema::FieldDef) -> Result<Option<Val>, EventError> {
    match j {
        Value::Array(items) => {
            if !def.list {
                return Err(EventError::FieldType {
                    field: def.name,
                    expected: "a single value",
                });
            }
            let mut out = Vec::with_capacity(items.len().min(MAX_LIST));
            for it in items.iter().take(MAX_LIST) {
                if let Some(v) = scalar(it, def)? {
                    out.push(v);
                }
            }
            Ok(Some(Val::List(out)))
        }
        other => {
            let v = scalar(other, def)?;
            Ok(if def.list {
                v.map(|v| Val::List(vec![v]))
            } else {
                v
            })
        }
    }
}

fn scalar(j: &Value, def: &'static schema::FieldDef) -> Result<Option<Val>, EventError> {
    let bad = |expected| EventError::FieldType {
        field: def.name,
        expected,
    };
    if j.is_null() {
        return Ok(None);
    }
    Ok(Some(match def.ty {
        Type::Str => Val::Str(cut(j.as_str().ok_or(bad("a string"))?)),
        Type::Int => Val::Int(j.as_i64().ok_or(bad("an integer"))?),
        Type::Bool => Val::Bool(j.as_bool().ok_or(bad("a bool"))?),
        Type::Duration => match j {
            Value::String(s) => Val::Dur(parse_duration(s).ok_or(bad("a duration"))?),
            _ => Val::Dur(
                j.as_u64()
                    .ok_or(bad("a duration (nanoseconds or \"90s\")"))?,
            ),
        },
        Type::Ip => Val::Ip(
            j.as_str()
                .and_then(|s| IpAddr::from_str(s).ok())
                .map(net::canonical)
                .ok_or(bad("an IP address"))?,
        ),
    }))
}

fn derive(root: &Value, how: Derive) -> Option<Val> {
    match how {
        Derive::Basename(p) => {
            let path = pointer(root, p)?.as_str()?;
            let base = path.rsplit('/').next().unwrap_or(path);
            (!base.is_empty()).then(|| Val::Str(cut(base)))
        }
        Derive::StratumMethod(p) => {
            crate::stratum::method(pointer(root, p)?.as_str()?).map(|m| Val::Str(cut(&m)))
        }
        Derive::OpenWrites(p) => {
            let flags = pointer(root, p)?.as_i64()?;
            // O_WRONLY | O_RDWR | O_CREAT | O_TRUNC
            Some(Val::Bool(flags & (0o1 | 0o2 | 0o100 | 0o1000) != 0))
        }
        Derive::IsPublic(p) => Some(Val::Bool(net::is_public(address(root, p)?))),
    }
}

/// Whether an address is globally routable (not loopback, private, link-local, CGNAT,
/// documentation, multicast, unspecified or unique-local): [`crate::net::is_public`]. A
/// policy's `network.extra_public_ranges` are applied when it evaluates
/// ([`crate::net::is_public_with`]).
pub fn is_public(ip: IpAddr) -> bool {
    net::is_public(ip)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_exec_and_audit_record() {
        let ev = json!({"kind":"exec","process":{"uid":0,"ancestors":[{"file":{"name":"bash"}},{"file":{"name":"sshd"}}]},
            "exec":{"file":{"path":"/tmp/xmrig"},"args":["-o","x"]}});
        let e = Event::from_json(&json!({"type":"event","ts":1,"event":ev})).unwrap();
        assert_eq!(e.kind(), Kind::Exec);
        let name = schema::lookup("exec.file.name").unwrap();
        assert_eq!(e.get(name), Some(&Val::Str("xmrig".into())));
        let anc = schema::lookup("process.ancestors.file.name").unwrap();
        assert_eq!(
            e.get(anc),
            Some(&Val::List(vec![
                Val::Str("bash".into()),
                Val::Str("sshd".into())
            ]))
        );
        assert_eq!(e.get(schema::lookup("exec.argv0").unwrap()), None);
    }

    #[test]
    fn a_typed_event_is_the_decoded_event_of_the_same_values() {
        let json = json!({"kind":"exec","process":{"pid":7},
            "exec":{"file":{"path":"/tmp/xmrig","name":"xmrig"},"args":["-o","x"]}});
        let read: Vec<FieldId> = (0..schema::FIELDS.len())
            .map(|i| FieldId::try_from(i).unwrap())
            .collect();
        let typed = Event::from_typed(Kind::Exec, &read, |name| match name {
            "process.pid" => Given::Value(Val::Int(7)),
            "exec.file.path" => Given::Value(Val::text("/tmp/xmrig")),
            "exec.file.name" => Given::Value(Val::text("xmrig")),
            "exec.args" => Given::Value(Val::texts(["-o", "x"])),
            _ => Given::Absent,
        })
        .unwrap();
        let decoded = Event::from_json(&json).unwrap();
        for (i, def) in schema::FIELDS.iter().enumerate() {
            let id = FieldId::try_from(i).unwrap();
            assert_eq!(typed.get(id), decoded.get(id), "{}", def.name);
        }
        // A field the source does not know, or an unread one.
        let unknown = |name: &str| {
            if name == "exec.argv0" {
                Given::Unknown
            } else {
                Given::Absent
            }
        };
        assert!(Event::from_typed(Kind::Exec, &read, unknown).is_none());
        let only_name = [schema::lookup("exec.file.name").unwrap()];
        assert!(Event::from_typed(Kind::Exec, &only_name, unknown).is_some());
        // Strings are cut as decoding cuts them; lists are bounded.
        let long = "é".repeat(MAX_STRING);
        assert_eq!(Val::text(&long), Val::Str(cut(&long)));
        let many = vec!["a"; MAX_LIST + 5];
        assert!(matches!(Val::texts(many), Val::List(l) if l.len() == MAX_LIST));
    }

    #[test]
    fn a_policy_asks_a_typed_event_for_the_fields_its_rules_of_that_kind_read() {
        let policy = crate::load_str(
            "p.yaml",
            r#"rules:
  - id: a
    expression: exec.file.name == "x" && process.uid == 0
    action: alert
  - id: b
    expression: dns.question.name == "pool.example"
    action: alert
"#,
        )
        .unwrap();
        let mut asked = Vec::new();
        let event = policy.typed_event(Kind::Exec, |name| {
            asked.push(name);
            Given::Value(if name == "process.uid" {
                Val::Int(0)
            } else {
                Val::text("x")
            })
        });
        asked.sort_unstable();
        assert_eq!(asked, ["exec.file.name", "process.uid"]);
        assert_eq!(policy.eval(&event.unwrap()).len(), 1);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(
            Event::from_json(&json!([])).unwrap_err(),
            EventError::NotAnObject
        );
        assert_eq!(
            Event::from_json(&json!({"kind":"nope"})).unwrap_err(),
            EventError::UnknownKind("nope".into())
        );
        assert!(matches!(
            Event::from_json(&json!({"kind":"exec","process":{"uid":"root"}})),
            Err(EventError::FieldType {
                field: "process.uid",
                ..
            })
        ));
    }

    #[test]
    fn a_policy_decodes_only_the_fields_its_enabled_rules_test() {
        let policy = crate::load_str(
            "p.yaml",
            r#"macros:
  - name: in_tmp
    expression: exec.file.path startswith "/tmp/"
rules:
  - id: tmp-miner
    expression: in_tmp && !(process.uid == 0)
    action: alert
  - id: off
    expression: exec.cwd == "/"
    action: alert
    disabled: true
"#,
        )
        .unwrap();
        // A wrong type in a field no rule tests is not read, so not an error either.
        let ev = json!({"kind":"exec","process":{"uid":1000,"comm":7},
            "exec":{"file":{"path":"/tmp/xmrig"},"cwd":"/","argv0":"xmrig"}});
        let e = policy.decode_event(&ev).unwrap();
        let field = |name| e.get(schema::lookup(name).unwrap());
        assert_eq!(
            field("exec.file.path"),
            Some(&Val::Str("/tmp/xmrig".into()))
        );
        assert_eq!(field("process.uid"), Some(&Val::Int(1000)));
        for untested in ["exec.cwd", "exec.argv0", "exec.file.name", "process.comm"] {
            assert_eq!(field(untested), None, "{untested}");
        }
        assert!(
            Event::from_json(&ev).is_err(),
            "the whole event has a bad process.comm"
        );
        assert_eq!(policy.eval(&e).len(), 1);
    }

    #[test]
    fn bounds_strings_and_derives() {
        let long = "é".repeat(MAX_STRING);
        let e = Event::from_json(
            &json!({"kind":"connect","process":{"comm":long},"connect":{"addr":{"ip":"10.0.0.1"}}}),
        )
        .unwrap();
        match e.get(schema::lookup("process.comm").unwrap()) {
            Some(Val::Str(s)) => assert!(s.len() <= MAX_STRING),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.get(schema::lookup("connect.addr.is_public").unwrap()),
            Some(&Val::Bool(false))
        );
        assert!(is_public("1.1.1.1".parse().unwrap()));
        assert!(!is_public("::1".parse().unwrap()));
    }
}

/// The value at JSON pointer `ptr` (as `Value::pointer`, without its `~0`/`~1` unescaping,
/// which allocates twice per segment: schema pointers never contain `~`, a test checks it).
/// This runs for every schema field of every event, so it matters.
fn pointer<'v>(root: &'v Value, ptr: &str) -> Option<&'v Value> {
    if ptr.is_empty() {
        return Some(root);
    }
    let rest = ptr.strip_prefix('/')?;
    rest.split('/').try_fold(root, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod pointer_tests {
    use serde_json::json;

    use super::pointer;
    use crate::schema;

    #[test]
    fn pointers_agree_with_serde_json() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "": 1});
        for p in [
            "", "/a", "/a/b", "/a/b/0", "/a/b/1/c", "/a/b/2", "/a/x", "/a/b/x", "/",
        ] {
            assert_eq!(pointer(&v, p), v.pointer(p), "{p}");
        }
    }

    #[test]
    fn schema_pointers_need_no_unescaping() {
        for def in schema::FIELDS {
            let (a, b) = match def.locator {
                schema::Locator::Ptr(p) => (p, ""),
                schema::Locator::Each(a, b) => (a, b),
            };
            assert!(!a.contains('~') && !b.contains('~'), "{}", def.name);
        }
    }
}
