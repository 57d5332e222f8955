//! The one line `enforcer` prints for an error that ends a command: the error and its causes,
//! each cause only when the text before it does not already say it (many errors name their
//! cause in their own message, and aya's do too, which printed every cause twice).

/// `err` and its causes, joined by `: `, without repeating a cause already in the text.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write plan map X: {source}")]
    struct Names {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write plan map X")]
    struct Silent {
        source: std::io::Error,
    }

    fn io() -> std::io::Error {
        std::io::Error::from_raw_os_error(7)
    }

    #[test]
    fn a_cause_the_message_names_is_not_repeated() {
        let err = anyhow::Error::new(Names { source: io() }).context("starting");
        assert_eq!(
            error_line(&err),
            "starting: cannot write plan map X: Argument list too long (os error 7)"
        );
    }

    #[test]
    fn a_cause_the_message_leaves_out_is_appended() {
        let err = anyhow::Error::new(Silent { source: io() });
        assert_eq!(
            error_line(&err),
            "cannot write plan map X: Argument list too long (os error 7)"
        );
    }
}
