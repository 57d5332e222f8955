//! The expression parser: tokens to [`Expr`], precedence `||` < `&&` < `!` < comparison.
//! Keywords `and`, `or` and `not` are accepted as spellings of `&&`, `||` and `!`.
//! Nesting is capped at [`MAX_DEPTH`] and text length at [`MAX_EXPR_LEN`].

use crate::ast::{CmpOp, Expr, ExprKind, Lit};
use crate::diag::{Code, Diagnostic};
use crate::lexer::{Tok, Token, lex};
use crate::yaml::ScalarMap;

/// Deepest nesting of parentheses and operators accepted.
pub const MAX_DEPTH: usize = 64;
/// Longest expression text accepted, in bytes.
pub const MAX_EXPR_LEN: usize = 16 * 1024;

/// Parses `text` (whose file positions `map` gives).
pub fn parse(text: &str, map: &ScalarMap) -> Result<Expr, Diagnostic> {
    if text.len() > MAX_EXPR_LEN {
        return Err(Diagnostic::error(
            Code::Limit,
            Some(map.span(0, 1)),
            format!("expression longer than {MAX_EXPR_LEN} bytes"),
        ));
    }
    if text.trim().is_empty() {
        return Err(Diagnostic::error(
            Code::Syntax,
            Some(map.span(0, 0)),
            "empty expression",
        ));
    }
    let tokens = lex(text, map)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let what = describe(&t.tok);
        return Err(Diagnostic::error(
            Code::Syntax,
            Some(t.span),
            format!("unexpected {what} after the expression"),
        )
        .label("expected `&&`, `||` or the end of the expression"));
    }
    Ok(e)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Lit(l) => format!("{} literal", l.type_name()),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Eof => "end of expression".into(),
        other => format!("operator `{}`", op_text(other)),
    }
}

fn op_text(t: &Tok) -> &'static str {
    match t {
        Tok::EqEq => "==",
        Tok::Ne => "!=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::Match => "=~",
        Tok::NotMatch => "!~",
        Tok::AndAnd => "&&",
        Tok::OrOr => "||",
        Tok::Bang => "!",
        _ => "?",
    }
}

impl Parser {
    fn peek(&self) -> Token {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                tok: Tok::Eof,
                span: crate::source::Span::new(crate::source::FileId(0), 0, 0),
            })
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n).map(|t| &t.tok)
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s == kw)
    }

    fn enter(&mut self, at: &Token) -> Result<(), Diagnostic> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Diagnostic::error(
                Code::Limit,
                Some(at.span),
                format!("expression nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, Diagnostic> {
        let mut lhs = self.and()?;
        while self.peek().tok == Tok::OrOr || self.is_kw("or") {
            let op = self.bump();
            self.enter(&op)?;
            let rhs = self.and()?;
            self.depth -= 1;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Or(Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Expr, Diagnostic> {
        let mut lhs = self.unary()?;
        while self.peek().tok == Tok::AndAnd || self.is_kw("and") {
            let op = self.bump();
            self.enter(&op)?;
            let rhs = self.unary()?;
            self.depth -= 1;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::And(Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        let t = self.peek();
        if t.tok == Tok::Bang
            || (self.is_kw("not") && self.peek_at(1) != Some(&Tok::Ident("in".into())))
        {
            self.bump();
            self.enter(&t)?;
            let inner = self.unary()?;
            self.depth -= 1;
            let span = t.span.to(inner.span);
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(inner)),
                span,
            });
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, Diagnostic> {
        let lhs = self.operand()?;
        let t = self.peek();
        let op = match &t.tok {
            Tok::EqEq => Some((CmpOp::Eq, 1)),
            Tok::Ne => Some((CmpOp::Ne, 1)),
            Tok::Lt => Some((CmpOp::Lt, 1)),
            Tok::Le => Some((CmpOp::Le, 1)),
            Tok::Gt => Some((CmpOp::Gt, 1)),
            Tok::Ge => Some((CmpOp::Ge, 1)),
            Tok::Match => Some((CmpOp::Match, 1)),
            Tok::NotMatch => Some((CmpOp::NotMatch, 1)),
            Tok::Ident(s) => match s.as_str() {
                "in" => Some((CmpOp::In, 1)),
                "contains" => Some((CmpOp::Contains, 1)),
                "startswith" => Some((CmpOp::StartsWith, 1)),
                "endswith" => Some((CmpOp::EndsWith, 1)),
                "not" if self.peek_at(1) == Some(&Tok::Ident("in".into())) => {
                    Some((CmpOp::NotIn, 2))
                }
                _ => None,
            },
            _ => None,
        };
        let Some((op, ntok)) = op else { return Ok(lhs) };
        let mut op_span = t.span;
        for _ in 0..ntok {
            op_span = op_span.to(self.bump().span);
        }
        let rhs = self.operand()?;
        let span = lhs.span.to(rhs.span);
        Ok(Expr {
            kind: ExprKind::Compare {
                lhs: Box::new(lhs),
                op,
                op_span,
                rhs: Box::new(rhs),
            },
            span,
        })
    }

    fn operand(&mut self) -> Result<Expr, Diagnostic> {
        let t = self.bump();
        match t.tok {
            Tok::Ident(ref s) if s == "true" || s == "false" => Ok(Expr {
                kind: ExprKind::Lit(Lit::Bool(s == "true")),
                span: t.span,
            }),
            Tok::Ident(ref s) if is_keyword(s) => Err(Diagnostic::error(
                Code::Syntax,
                Some(t.span),
                format!("expected a field, name or value, found keyword `{s}`"),
            )),
            Tok::Ident(s) => Ok(Expr {
                kind: ExprKind::Ident(s),
                span: t.span,
            }),
            Tok::Lit(l) => Ok(Expr {
                kind: ExprKind::Lit(l),
                span: t.span,
            }),
            Tok::LParen => self.paren(&t),
            other => {
                let what = describe(&other);
                Err(Diagnostic::error(
                    Code::Syntax,
                    Some(t.span),
                    format!("expected a field, name or value, found {what}"),
                )
                .label("expected an operand here"))
            }
        }
    }

    /// After `(`: a parenthesized expression or a list `(a, b, ...)`.
    fn paren(&mut self, open: &Token) -> Result<Expr, Diagnostic> {
        self.enter(open)?;
        if self.peek().tok == Tok::RParen {
            let close = self.bump();
            self.depth -= 1;
            return Ok(Expr {
                kind: ExprKind::List(Vec::new()),
                span: open.span.to(close.span),
            });
        }
        let first = self.or()?;
        let mut items = Vec::new();
        let is_list = self.peek().tok == Tok::Comma;
        items.push(first);
        while self.peek().tok == Tok::Comma {
            self.bump();
            if self.peek().tok == Tok::RParen {
                break;
            }
            items.push(self.operand()?);
        }
        let close = self.bump();
        if close.tok != Tok::RParen {
            let what = describe(&close.tok);
            return Err(Diagnostic::error(
                Code::Syntax,
                Some(close.span),
                format!("expected `)`, found {what}"),
            )
            .label("unclosed parenthesis")
            .note(Some(open.span), "opened here"));
        }
        self.depth -= 1;
        let span = open.span.to(close.span);
        if is_list {
            Ok(Expr {
                kind: ExprKind::List(items),
                span,
            })
        } else {
            let inner = items.pop().map(Box::new);
            match inner {
                Some(inner) => Ok(Expr {
                    kind: ExprKind::Paren(inner),
                    span,
                }),
                None => Ok(Expr {
                    kind: ExprKind::List(Vec::new()),
                    span,
                }),
            }
        }
    }
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "in" | "not" | "contains" | "startswith" | "endswith" | "and" | "or"
    )
}
