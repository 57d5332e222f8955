//! Drives hickory-proto's decoders over one message, section by section, keeping what the
//! policy reads (see the module docs of `dns` for what is strict and what is lenient).

use hickory_proto::{
    op::{Header, Message, MessageType, Query, ResponseCode},
    serialize::binary::{BinDecodable as _, BinDecoder},
};

use super::{DnsError, DnsMessage, MAX_ANSWERS, MAX_QUESTIONS, Section, render};

/// Decodes one message (no length prefix); `bytes` is already bounded by the caller.
pub(super) fn message(bytes: &[u8]) -> Result<DnsMessage, DnsError> {
    let mut decoder = BinDecoder::new(bytes);
    let Header { metadata, counts } =
        Header::read(&mut decoder).map_err(|e| DnsError::decode(Section::Header, e))?;
    let mut truncated_sections = false;

    // One query at a time: the count is the sender's word, so nothing is reserved for it.
    let mut questions = Vec::new();
    for _ in 0..counts.queries {
        let query =
            Query::read(&mut decoder).map_err(|e| DnsError::decode(Section::Question, e))?;
        if questions.len() < MAX_QUESTIONS {
            questions.push(render::question(&query));
        } else {
            truncated_sections = true;
        }
    }

    // hickory's record reader also checks what a record may be in this section (no OPT, no
    // TSIG, no empty update record outside an update). It reserves at most 8 records up
    // front; the rest grow with what the bytes really hold.
    let (records, _, _) = Message::read_records(
        &mut decoder,
        usize::from(counts.answers),
        false,
        metadata.op_code,
    )
    .map_err(|e| DnsError::decode(Section::Answer, e))?;
    if records.len() > MAX_ANSWERS {
        truncated_sections = true;
    }
    let answers = records
        .iter()
        .take(MAX_ANSWERS)
        .map(render::answer)
        .collect();

    // Authority and additional sections: only the EDNS high bits of the rcode are used; a
    // section that does not decode is flagged, not fatal.
    let mut rcode = metadata.response_code;
    let tail = Message::read_records(
        &mut decoder,
        usize::from(counts.authorities),
        false,
        metadata.op_code,
    )
    .and_then(|_| {
        Message::read_records(
            &mut decoder,
            usize::from(counts.additionals),
            true,
            metadata.op_code,
        )
    });
    match tail {
        Ok((_, Some(edns), _)) => {
            rcode = ResponseCode::from(edns.rcode_high(), metadata.response_code.low());
        }
        Ok((_, None, _)) => {}
        Err(_) => truncated_sections = true,
    }

    Ok(DnsMessage {
        id: metadata.id,
        is_response: metadata.message_type == MessageType::Response,
        opcode: u8::from(metadata.op_code),
        rcode: u16::from(rcode),
        questions,
        answers,
        truncated_sections,
    })
}
