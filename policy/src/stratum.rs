//! Stratum fingerprinting of a connection's first payload: the JSON-RPC `method` of the first
//! line when it is a JSON object (stratum v1, EthereumStratum and CryptoNote `login` all send
//! one). Rules then compare the method with the stratum methods, so key order, whitespace and
//! id values do not matter. When the capture ends inside that first line (the sensor keeps only
//! the first bytes of a write), the object cannot be parsed; the method is then taken, as the
//! kernel does, from the first `"method"` key followed by a plain string value.

/// Longest first line examined.
pub const MAX_LINE: usize = 4096;

/// The `method` member of the first line of `payload`, if that line is a JSON object with a
/// string `method` (or the capture is cut inside that line and a plain `"method": "v"` is seen).
pub fn method(payload: &str) -> Option<String> {
    let line = payload.split('\n').next()?.trim();
    if !line.starts_with('{') || line.len() > MAX_LINE {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(v) => v.get("method")?.as_str().map(str::to_string),
        Err(e) if e.is_eof() && !payload.contains('\n') => scan_method(line),
        Err(_) => None,
    }
}

/// The string after the first `"method"` key of a truncated JSON object: `"method" : "v"`,
/// `v` without escapes.
fn scan_method(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("\"method\"")?;
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let (value, _) = rest.strip_prefix('"')?.split_once('"')?;
    (!value.contains('\\')).then(|| value.to_string())
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

    #[test]
    fn reads_the_method_of_a_truncated_capture() {
        assert_eq!(
            method(r#"{"id":1,"method" : "login","params":{"login":"4FAKE","pa"#).as_deref(),
            Some("login")
        );
        // Cut inside the method, escaped, or a complete line that is not JSON: nothing.
        assert_eq!(method(r#"{"id":1,"method":"log"#), None);
        assert_eq!(method(r#"{"method":"lo\"gin","#), None);
        assert_eq!(method("{\"method\":\"login\",\n"), None);
        assert_eq!(method(r#"{"id":1,"params":["#), None);
    }
}
