//! The expression syntax tree produced by [`crate::parser`], before name resolution and type
//! checking. Every node carries its span in the policy file.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::source::Span;

/// An expression node.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is in the file.
    pub span: Span,
}

/// Expression node kinds.
#[derive(Debug, Clone)]
pub enum ExprKind {
    /// `a || b`
    Or(Box<Expr>, Box<Expr>),
    /// `a && b`
    And(Box<Expr>, Box<Expr>),
    /// `!a`
    Not(Box<Expr>),
    /// `lhs op rhs`
    Compare {
        /// Left operand (must resolve to a field).
        lhs: Box<Expr>,
        /// The operator.
        op: CmpOp,
        /// Where the operator is.
        op_span: Span,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// A field (dotted) or a macro / list name.
    Ident(String),
    /// A literal.
    Lit(Lit),
    /// `(a, b, c)`
    List(Vec<Expr>),
    /// `(a)`
    Paren(Box<Expr>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `"text"` or `'text'`
    Str(String),
    /// `42`, `-1`
    Int(i64),
    /// `true` / `false`
    Bool(bool),
    /// `90s`, `5m`, `250ms` (nanoseconds)
    Duration(u64),
    /// `10.1.2.3`, `2001:db8::1`
    Ip(IpAddr),
    /// `10.0.0.0/8`
    Cidr(IpNet),
    /// `~"/dev/cpu/*/msr"`
    Glob(String),
    /// `r"^xmr"`
    Regex(String),
}

impl Lit {
    /// A short name of the literal's type for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Lit::Str(_) => "string",
            Lit::Int(_) => "integer",
            Lit::Bool(_) => "bool",
            Lit::Duration(_) => "duration",
            Lit::Ip(_) => "ip",
            Lit::Cidr(_) => "cidr",
            Lit::Glob(_) => "glob",
            Lit::Regex(_) => "regex",
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    /// `contains`
    Contains,
    /// `startswith`
    StartsWith,
    /// `endswith`
    EndsWith,
}

impl CmpOp {
    /// For a negated operator, the positive one; `None` otherwise.
    pub fn positive(self) -> Option<CmpOp> {
        match self {
            CmpOp::Ne => Some(CmpOp::Eq),
            CmpOp::NotIn => Some(CmpOp::In),
            CmpOp::NotMatch => Some(CmpOp::Match),
            _ => None,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::In => "in",
            CmpOp::NotIn => "not in",
            CmpOp::Match => "=~",
            CmpOp::NotMatch => "!~",
            CmpOp::Contains => "contains",
            CmpOp::StartsWith => "startswith",
            CmpOp::EndsWith => "endswith",
        })
    }
}
