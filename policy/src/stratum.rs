//! Stratum fingerprinting of a connection's first payload: the JSON-RPC `method` of the first
//! line when it is a JSON object (stratum v1, EthereumStratum and CryptoNote `login` all send
//! one). Rules then compare the method with the stratum methods, so key order, whitespace and
//! id values do not matter.

/// Longest first line examined.
pub const MAX_LINE: usize = 4096;

/// The `method` member of the first line of `payload`, if that line is a JSON object with a
/// string `method`.
pub fn method(payload: &str) -> Option<String> {
    let line = payload.split('\n').next()?.trim();
    if !line.starts_with('{') || line.len() > MAX_LINE {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get("method")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_method_of_each_dialect() {
        assert_eq!(
            method("{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"agent/1.0\"]}\n")
                .as_deref(),
            Some("mining.subscribe")
        );
        assert_eq!(
            method(
                r#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4FAKE","pass":"x"}}"#
            )
            .as_deref(),
            Some("login")
        );
        assert_eq!(method("GET / HTTP/1.1\r\n"), None);
        assert_eq!(method("{not json"), None);
        assert_eq!(method(r#"{"id":1,"result":null}"#), None);
    }
}
