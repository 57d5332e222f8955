//! Messages built with hickory-proto's encoder, decoded by `dns::parse`/`parse_tcp`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, TXT},
    },
};
use serde_json::json;

use super::{
    DnsAnswer, DnsError, DnsQuestion, MAX_ANSWERS, MAX_DATA_CHARS, MAX_QUESTIONS, Section, parse,
    parse_tcp,
};

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn query(id: u16, qname: &str, qtype: RecordType) -> Message {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name(qname), qtype));
    msg
}

/// A response to `qname A` with an A, an AAAA and a CNAME answer.
fn response(id: u16, qname: &str) -> Message {
    let mut msg = Message::response(id, OpCode::Query);
    msg.add_query(Query::query(name(qname), RecordType::A));
    msg.add_answer(Record::from_rdata(
        name(qname),
        300,
        RData::CNAME(CNAME(name("Edge.CDN.Example."))),
    ));
    msg.add_answer(Record::from_rdata(
        name("edge.cdn.example."),
        60,
        RData::A(A(Ipv4Addr::new(127, 0, 0, 77))),
    ));
    msg.add_answer(Record::from_rdata(
        name("edge.cdn.example."),
        61,
        RData::AAAA(AAAA(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x77))),
    ));
    msg
}

fn bytes(msg: &Message) -> Vec<u8> {
    msg.to_vec().unwrap()
}

fn tcp(payload: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn a_query_round_trips() {
    let wire = bytes(&query(0x1234, "pool.example-miner.test.", RecordType::A));
    let msg = parse(&wire).unwrap();
    assert_eq!(msg.id, 0x1234);
    assert!(!msg.is_response);
    assert_eq!((msg.opcode, msg.rcode), (0, 0));
    assert_eq!(
        msg.questions,
        [DnsQuestion {
            name: "pool.example-miner.test".into(),
            qtype: "A".into()
        }]
    );
    assert!(msg.answers.is_empty());
    assert!(!msg.truncated_sections);
    assert_eq!(
        msg.to_json(),
        json!({
            "id": 0x1234, "is_response": false, "opcode": 0, "rcode": 0,
            "question": {"name": "pool.example-miner.test", "type": "A"},
            "questions": [{"name": "pool.example-miner.test", "type": "A"}],
            "answers": [], "truncated_sections": false,
        })
    );
}

#[test]
fn names_are_lowercased_without_the_trailing_dot() {
    for (given, want) in [
        ("POOL.Example-Miner.TEST.", "pool.example-miner.test"),
        ("pool.example-miner.test", "pool.example-miner.test"),
        ("xn--bcher-kva.example.", "xn--bcher-kva.example"),
        (".", "."),
    ] {
        let msg = parse(&bytes(&query(1, given, RecordType::AAAA))).unwrap();
        assert_eq!(msg.questions[0].name, want, "{given}");
        assert_eq!(msg.questions[0].qtype, "AAAA");
    }
}

#[test]
fn a_dot_inside_a_label_stays_escaped() {
    // One label `pool.example-miner` then `test`: not the same name as three labels.
    let mut wire = bytes(&query(1, "x.test.", RecordType::A));
    let label = b"pool.example-miner";
    wire.splice(
        12..14,
        [&[u8::try_from(label.len()).unwrap()][..], label].concat(),
    );
    let msg = parse(&wire).unwrap();
    assert_eq!(msg.questions[0].name, "pool\\.example-miner.test");
}

#[test]
fn a_response_with_a_aaaa_and_cname_answers() {
    let msg = parse(&bytes(&response(7, "Pool.Example-Miner.Test."))).unwrap();
    assert!(msg.is_response);
    assert_eq!(msg.rcode, 0);
    assert_eq!(
        msg.answers,
        [
            DnsAnswer {
                name: "pool.example-miner.test".into(),
                rtype: "CNAME".into(),
                ttl: 300,
                ip: None,
                data: "edge.cdn.example".into(),
            },
            DnsAnswer {
                name: "edge.cdn.example".into(),
                rtype: "A".into(),
                ttl: 60,
                ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 77))),
                data: "127.0.0.77".into(),
            },
            DnsAnswer {
                name: "edge.cdn.example".into(),
                rtype: "AAAA".into(),
                ttl: 61,
                ip: Some("fd00::77".parse().unwrap()),
                data: "fd00::77".into(),
            },
        ]
    );
    let json = msg.to_json();
    assert_eq!(json.pointer("/is_response"), Some(&json!(true)));
    assert_eq!(json.pointer("/answers/0/ip"), None, "{json}");
    assert_eq!(
        json.pointer("/answers/0/data"),
        Some(&json!("edge.cdn.example"))
    );
    assert_eq!(json.pointer("/answers/1/ip"), Some(&json!("127.0.0.77")));
    assert_eq!(json.pointer("/answers/2/ip"), Some(&json!("fd00::77")));
    assert_eq!(json.pointer("/answers/2/ttl"), Some(&json!(61)));
    assert_eq!(json.pointer("/answers/2/type"), Some(&json!("AAAA")));
}

#[test]
fn nxdomain_rcode() {
    let mut msg = Message::error_msg(9, OpCode::Query, ResponseCode::NXDomain);
    msg.add_query(Query::query(name("nothing.test."), RecordType::A));
    let decoded = parse(&bytes(&msg)).unwrap();
    assert_eq!(decoded.rcode, 3);
    assert!(decoded.answers.is_empty());
    let json = decoded.to_json();
    assert_eq!(json.pointer("/rcode"), Some(&json!(3)));
    assert_eq!(json.pointer("/question/name"), Some(&json!("nothing.test")));
    assert_eq!(json.pointer("/question/type"), Some(&json!("A")));
}

#[test]
fn extended_rcode_from_edns() {
    let mut msg = Message::error_msg(9, OpCode::Query, ResponseCode::BADVERS);
    msg.add_query(Query::query(name("x.test."), RecordType::A));
    msg.set_edns(Edns::new());
    msg.edns
        .as_mut()
        .unwrap()
        .set_rcode_high(ResponseCode::BADVERS.high());
    let decoded = parse(&bytes(&msg)).unwrap();
    assert_eq!(decoded.rcode, 16);
    assert!(!decoded.truncated_sections);
}

#[test]
fn other_types_keep_their_mnemonic_or_get_type_n() {
    for (rtype, want) in [
        (RecordType::TXT, "TXT"),
        (RecordType::HTTPS, "HTTPS"),
        (RecordType::Unknown(65280), "TYPE65280"),
    ] {
        let msg = parse(&bytes(&query(1, "x.test.", rtype))).unwrap();
        assert_eq!(msg.questions[0].qtype, want);
    }
}

#[test]
fn long_record_data_is_cut() {
    let mut msg = Message::response(1, OpCode::Query);
    msg.add_query(Query::query(name("t.test."), RecordType::TXT));
    let chunk = "é".repeat(120); // 240 bytes, within a 255-byte character-string
    msg.add_answer(Record::from_rdata(
        name("t.test."),
        5,
        RData::TXT(TXT::new(vec![chunk.clone(), chunk.clone(), chunk])),
    ));
    let decoded = parse(&bytes(&msg)).unwrap();
    let data = &decoded.answers[0].data;
    assert_eq!(data.chars().count(), MAX_DATA_CHARS, "{data}");
    assert_eq!(decoded.answers[0].rtype, "TXT");
    assert!(decoded.answers[0].ip.is_none());
}

#[test]
fn questions_and_answers_over_the_limits_are_flagged() {
    let mut msg = Message::response(1, OpCode::Query);
    for i in 0..MAX_QUESTIONS + 2 {
        msg.add_query(Query::query(name(&format!("q{i}.test.")), RecordType::A));
    }
    for i in 0..MAX_ANSWERS + 8 {
        let ip = Ipv4Addr::new(10, 0, 0, u8::try_from(i).unwrap());
        msg.add_answer(Record::from_rdata(name("a.test."), 1, RData::A(A(ip))));
    }
    let decoded = parse(&bytes(&msg)).unwrap();
    assert_eq!(decoded.questions.len(), MAX_QUESTIONS);
    assert_eq!(decoded.questions[3].name, "q3.test");
    assert_eq!(decoded.answers.len(), MAX_ANSWERS);
    assert_eq!(decoded.answers[31].data, "10.0.0.31");
    assert!(decoded.truncated_sections);
}

#[test]
fn no_question_means_no_question_key() {
    let decoded = parse(&bytes(&Message::response(1, OpCode::Query))).unwrap();
    let json = decoded.to_json();
    assert_eq!(json.get("question"), None, "{json}");
    assert_eq!(json.pointer("/questions"), Some(&json!([])));
}

#[test]
fn garbage_is_refused() {
    assert!(matches!(
        parse(b""),
        Err(DnsError::Truncated {
            section: Section::Header
        })
    ));
    assert!(matches!(
        parse(b"hello"),
        Err(DnsError::Truncated {
            section: Section::Header
        })
    ));
    // A header announcing one question whose name is a pointer to itself.
    let looped = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
    assert!(
        matches!(
            parse(&looped),
            Err(DnsError::Malformed {
                section: Section::Question,
                ..
            })
        ),
        "{:?}",
        parse(&looped)
    );
    // A reserved label type (0b01).
    let reserved = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1];
    assert!(matches!(
        parse(&reserved),
        Err(DnsError::Malformed {
            section: Section::Question,
            ..
        })
    ));
    // An OPT record in the answer section.
    let mut msg = response(1, "x.test.");
    msg.add_answer(Record::from_rdata(
        Name::root(),
        0,
        RData::OPT(Default::default()),
    ));
    assert!(matches!(
        parse(&bytes(&msg)),
        Err(DnsError::Malformed {
            section: Section::Answer,
            ..
        })
    ));
    // Text, however long, is not a message.
    let text = b"GET / HTTP/1.1\r\nHost: pool.example-miner.test\r\n\r\n";
    assert!(parse(text).is_err(), "{:?}", parse(text));
}

#[test]
fn every_cut_inside_question_or_answers_is_refused() {
    let mut msg = response(3, "pool.example-miner.test.");
    let answers_end = bytes(&msg).len();
    msg.set_edns(Edns::new());
    let full = bytes(&msg);
    assert!(full.len() > answers_end);
    // Mostly `Truncated`; a cut inside a CNAME's target is hickory's "incorrect rdata length".
    for cut in 0..answers_end {
        match parse(&full[..cut]) {
            Err(DnsError::Truncated { .. } | DnsError::Malformed { .. }) => {}
            other => panic!("cut at {cut} of {answers_end}: {other:?}"),
        }
    }
    // Cut inside the additional section: the answers are kept and the message flagged.
    for cut in answers_end + 1..full.len() {
        let decoded = parse(&full[..cut]).unwrap();
        assert_eq!(decoded.answers.len(), 3, "cut at {cut}");
        assert!(decoded.truncated_sections, "cut at {cut}");
    }
    assert!(!parse(&full).unwrap().truncated_sections);
}

#[test]
fn tcp_length_prefix() {
    let wire = bytes(&response(5, "pool.example-miner.test."));
    let framed = tcp(&wire);
    assert_eq!(parse_tcp(&framed).unwrap(), parse(&wire).unwrap());

    // A pipelined second message after the first is ignored.
    let mut two = framed.clone();
    two.extend_from_slice(&tcp(&bytes(&query(6, "other.test.", RecordType::A))));
    assert_eq!(parse_tcp(&two).unwrap().id, 5);

    // The prefix declares more than follows: cut short.
    let short = &framed[..framed.len() - 1];
    assert!(matches!(
        parse_tcp(short),
        Err(DnsError::TcpLengthMismatch { declared, available })
            if declared == wire.len() && available == wire.len() - 1
    ));
    // The prefix written alone.
    assert!(matches!(
        parse_tcp(&framed[..2]),
        Err(DnsError::TcpLengthMismatch { available: 0, .. })
    ));
    for len in 0..2 {
        assert!(matches!(
            parse_tcp(&framed[..len]),
            Err(DnsError::TcpPrefixMissing { len: l }) if l == len
        ));
    }
    // A UDP payload given to parse_tcp: its id becomes the length.
    assert!(parse_tcp(&bytes(&query(0xffff, "x.test.", RecordType::A))).is_err());
}

#[test]
fn inputs_over_65535_bytes_are_refused() {
    let mut big = bytes(&query(1, "x.test.", RecordType::A));
    big.resize(65_536, 0);
    assert!(matches!(
        parse(&big),
        Err(DnsError::TooLong { len: 65_536 })
    ));
    big.truncate(65_535);
    assert!(parse(&big).is_ok(), "trailing bytes are ignored");
    let mut framed = vec![0xff, 0xff];
    framed.extend_from_slice(&big);
    assert!(parse_tcp(&framed).is_ok());
    framed.push(0);
    assert!(matches!(
        parse_tcp(&framed),
        Err(DnsError::TooLong { len: 65_538 })
    ));
}

/// The fuzz seeds: a query, a response, an NXDOMAIN with EDNS, a TCP-framed query (as the
/// fuzz target also tries `parse_tcp`).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut nx = Message::error_msg(2, OpCode::Query, ResponseCode::NXDomain);
    nx.add_query(Query::query(name("nothing.test."), RecordType::AAAA));
    nx.set_edns(Edns::new());
    let mut txt = Message::response(4, OpCode::Query);
    txt.add_query(Query::query(name("t.test."), RecordType::TXT));
    txt.add_answer(Record::from_rdata(
        name("t.test."),
        5,
        RData::TXT(TXT::new(vec!["v=miner".into()])),
    ));
    vec![
        (
            "query_a",
            bytes(&query(1, "pool.example-miner.test.", RecordType::A)),
        ),
        ("response_a_aaaa_cname", bytes(&response(3, "Pool.Test."))),
        ("nxdomain_edns", bytes(&nx)),
        ("response_txt", bytes(&txt)),
        (
            "tcp_query",
            tcp(&bytes(&query(5, "x.test.", RecordType::AAAA))),
        ),
    ]
}

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/dns_message")
}

/// Writes the fuzz seeds: `cargo test -p enforcer dns::tests::write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes enforcer/fuzz/seeds/dns_message"]
fn write_fuzz_seeds() {
    std::fs::create_dir_all(seed_dir()).unwrap();
    for (file, wire) in seeds() {
        std::fs::write(seed_dir().join(file), wire).unwrap();
    }
}

#[test]
fn fuzz_seeds_are_current() {
    for (file, wire) in seeds() {
        let stored = std::fs::read(seed_dir().join(file)).unwrap_or_default();
        assert_eq!(
            stored, wire,
            "fuzz seed {file} differs: run the ignored test write_fuzz_seeds"
        );
        if file.starts_with("tcp_") {
            parse_tcp(&stored).unwrap();
        } else {
            parse(&stored).unwrap();
        }
    }
}
