//! The checker: resolves names (fields, macros, lists), type-checks every comparison against
//! the schema, expands macros (detecting cycles), infers each expression's event kind (one
//! kind per expression; `process.*` fields fit any), and compiles leaves into [`Matcher`]s.
//! Errors are collected, never thrown: one bad rule does not hide the others.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{CmpOp, Expr, ExprKind, Lit};
use crate::diag::{Code, Diagnostic};
use crate::doc::{RawMacro, RawRule};
use crate::ir::{Cond, CondNode, Matcher, Test};
use crate::lists::{ListDef, ValueSet};
use crate::parser;
use crate::schema::{self, FieldDef, FieldId, Kind, Type};
use crate::source::Span;
use crate::values;

/// A rule that passed checking.
#[derive(Debug, Clone)]
pub struct CheckedRule {
    /// The rule as written.
    pub raw: RawRule,
    /// Its compiled condition.
    pub cond: Cond,
    /// The event kind it applies to.
    pub kind: Kind,
}

/// The first line of a regex error (the crate's messages span several lines).
pub fn regex_error_line(e: &regex::Error) -> String {
    let s = e.to_string();
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid regex")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

#[derive(Debug, Clone)]
enum MacroState {
    Visiting,
    Failed,
    Cond(Cond, Option<(Kind, Span)>),
    Values(ValueSet),
}

/// Tracks the event kind an expression uses.
#[derive(Debug, Default)]
struct KindAcc {
    first: Option<(Kind, Span)>,
}

/// Checks macros and rules against the lists.
#[derive(Debug)]
pub struct Checker {
    pub(crate) lists: HashMap<String, ListDef>,
    macros: HashMap<String, RawMacro>,
    state: HashMap<String, MacroState>,
    stack: Vec<String>,
    /// Every diagnostic found so far.
    pub diags: Vec<Diagnostic>,
}

impl Checker {
    /// A checker over these lists and macros (duplicates are reported here).
    pub fn new(lists: Vec<ListDef>, macros: Vec<RawMacro>) -> Checker {
        let mut c = Checker {
            lists: HashMap::new(),
            macros: HashMap::new(),
            state: HashMap::new(),
            stack: Vec::new(),
            diags: Vec::new(),
        };
        for l in lists {
            if let Some(prev) = c.lists.get(&l.name) {
                c.diags.push(duplicate("list", &l.name, l.span, prev.span));
                continue;
            }
            c.lists.insert(l.name.clone(), l);
        }
        for m in macros {
            let prev = c
                .macros
                .get(&m.name)
                .map(|p| p.name_span)
                .or_else(|| c.lists.get(&m.name).map(|l| l.span));
            if let Some(prev) = prev {
                c.diags.push(duplicate("macro", &m.name, m.name_span, prev));
                continue;
            }
            c.macros.insert(m.name.clone(), m);
        }
        c
    }

    /// Checks every macro (so unused ones are reported too), in name order.
    pub fn check_macros(&mut self) {
        let mut names: Vec<(Span, String)> = self
            .macros
            .values()
            .map(|m| (m.name_span, m.name.clone()))
            .collect();
        names.sort_by_key(|(s, _)| (s.file, s.start));
        for (span, name) in names {
            self.macro_state(&name, span);
        }
    }

    /// Checks one rule; `None` if it has errors (already reported).
    pub fn check_rule(&mut self, raw: &RawRule) -> Option<CheckedRule> {
        let expr = match parser::parse(&raw.expr.text, &raw.expr.map) {
            Ok(e) => e,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        let mut acc = KindAcc::default();
        let cond = self.cond(&expr, &mut acc)?;
        let Some((kind, _)) = acc.first else {
            self.diags.push(
                Diagnostic::error(Code::MixedKinds, Some(expr.span), format!("rule `{}` applies to no event kind", raw.id))
                    .label("uses no field of an event kind")
                    .note(None, "`process.*` fields are common to all kinds: add a field such as `exec.file.name`"),
            );
            return None;
        };
        Some(CheckedRule {
            raw: raw.clone(),
            cond,
            kind,
        })
    }

    fn macro_state(&mut self, name: &str, use_span: Span) -> Option<MacroState> {
        match self.state.get(name) {
            Some(MacroState::Visiting) => {
                let mut path: Vec<&str> = self.stack.iter().map(String::as_str).collect();
                if let Some(i) = path.iter().position(|n| *n == name) {
                    path.drain(..i);
                }
                path.push(name);
                self.diags.push(
                    Diagnostic::error(
                        Code::Cycle,
                        Some(use_span),
                        format!("macro cycle: {}", path.join(" -> ")),
                    )
                    .label("this reference closes the cycle"),
                );
                return None;
            }
            Some(s) => return Some(s.clone()),
            None => {}
        }
        let m = self.macros.get(name)?.clone();
        self.state.insert(name.to_string(), MacroState::Visiting);
        self.stack.push(name.to_string());
        let result = match parser::parse(&m.expr.text, &m.expr.map) {
            Err(d) => {
                self.diags.push(d);
                None
            }
            Ok(e) if is_value_list(&e) => self.values(&e).map(MacroState::Values),
            Ok(e) => {
                let mut acc = KindAcc::default();
                self.cond(&e, &mut acc)
                    .map(|c| MacroState::Cond(c, acc.first))
            }
        };
        self.stack.pop();
        let state = result.unwrap_or(MacroState::Failed);
        self.state.insert(name.to_string(), state.clone());
        Some(state)
    }

    fn add_kind(
        &mut self,
        acc: &mut KindAcc,
        kind: Option<Kind>,
        span: Span,
        inner: Option<Span>,
    ) -> bool {
        let Some(kind) = kind else { return true };
        match acc.first {
            None => {
                acc.first = Some((kind, span));
                true
            }
            Some((k, _)) if k == kind => true,
            Some((k, first)) => {
                let mut d = Diagnostic::error(
                    Code::MixedKinds,
                    Some(span),
                    format!("expression mixes event kinds `{k}` and `{kind}`"),
                )
                .label(format!("this is a `{kind}` field"))
                .note(
                    Some(first),
                    format!("the expression is about `{k}` events because of this"),
                );
                if let Some(inner) = inner {
                    d = d.note(Some(inner), format!("the macro uses `{kind}` here"));
                }
                self.diags.push(d);
                false
            }
        }
    }

    fn cond(&mut self, e: &Expr, acc: &mut KindAcc) -> Option<Cond> {
        let node = match &e.kind {
            ExprKind::Or(a, b) | ExprKind::And(a, b) => {
                let is_or = matches!(e.kind, ExprKind::Or(..));
                let (ca, cb) = (self.cond(a, acc), self.cond(b, acc));
                let mut items = Vec::new();
                for c in [ca?, cb?] {
                    match c.node {
                        CondNode::Or(inner) if is_or => items.extend(inner),
                        CondNode::And(inner) if !is_or => items.extend(inner),
                        _ => items.push(c),
                    }
                }
                if is_or {
                    CondNode::Or(items)
                } else {
                    CondNode::And(items)
                }
            }
            ExprKind::Not(inner) => CondNode::Not(Box::new(self.cond(inner, acc)?)),
            ExprKind::Paren(inner) => {
                return self.cond(inner, acc).map(|c| Cond {
                    node: c.node,
                    span: e.span,
                });
            }
            ExprKind::Lit(Lit::Bool(b)) => CondNode::Const(*b),
            ExprKind::Lit(l) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        Some(e.span),
                        format!("a {} literal is not a condition", l.type_name()),
                    )
                    .label("expected a condition"),
                );
                return None;
            }
            ExprKind::List(_) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        Some(e.span),
                        "a list is not a condition",
                    )
                    .label("use it on the right of `in`"),
                );
                return None;
            }
            ExprKind::Ident(name) if name.contains('.') => {
                let (id, def) = self.field(name, e.span)?;
                if def.ty != Type::Bool {
                    self.diags.push(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            Some(e.span),
                            format!("field `{name}` is of type {}, not a condition", def.ty),
                        )
                        .label("compare it with a value, e.g. `==`, `in`, `contains`"),
                    );
                    return None;
                }
                if !self.add_kind(acc, def.kind, e.span, None) {
                    return None;
                }
                CondNode::Test(Test {
                    field: id,
                    op: CmpOp::Eq,
                    negate: false,
                    matcher: Arc::new(Matcher::Bool(true)),
                })
            }
            ExprKind::Ident(name) => match self.macro_state(name, e.span) {
                Some(MacroState::Cond(body, kind)) => {
                    if let Some((k, inner)) = kind
                        && !self.add_kind(acc, Some(k), e.span, Some(inner))
                    {
                        return None;
                    }
                    CondNode::Macro(name.as_str().into(), Box::new(body))
                }
                Some(MacroState::Failed) => return None,
                Some(MacroState::Values(_)) => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            Some(e.span),
                            format!("macro `{name}` is a value list, not a condition"),
                        )
                        .label("use it on the right of `in`"),
                    );
                    return None;
                }
                Some(MacroState::Visiting) => return None,
                None if self.lists.contains_key(name) => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            Some(e.span),
                            format!("list `{name}` is not a condition"),
                        )
                        .label("use it on the right of `in`"),
                    );
                    return None;
                }
                None => {
                    // A cycle was reported by macro_state when the macro exists.
                    if !self.macros.contains_key(name) {
                        self.diags.push(unknown_name(name, e.span));
                    }
                    return None;
                }
            },
            ExprKind::Compare {
                lhs,
                op,
                op_span,
                rhs,
            } => {
                let ExprKind::Ident(name) = &lhs.kind else {
                    self.diags.push(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            Some(lhs.span),
                            "the left side of a comparison must be a field",
                        )
                        .label("expected a field such as `exec.file.name`"),
                    );
                    return None;
                };
                if !name.contains('.') {
                    self.diags.push(
                        if self.macros.contains_key(name) || self.lists.contains_key(name) {
                            Diagnostic::error(
                                Code::TypeMismatch,
                                Some(lhs.span),
                                "the left side of a comparison must be a field",
                            )
                            .label(format!("`{name}` is a macro or list"))
                        } else {
                            unknown_name(name, lhs.span)
                        },
                    );
                    return None;
                }
                let (id, def) = self.field(name, lhs.span)?;
                let (negate, matcher) = self.compare(def, *op, *op_span, rhs)?;
                if !self.add_kind(acc, def.kind, lhs.span, None) {
                    return None;
                }
                CondNode::Test(Test {
                    field: id,
                    op: *op,
                    negate,
                    matcher: Arc::new(matcher),
                })
            }
        };
        Some(Cond { node, span: e.span })
    }

    fn field(&mut self, name: &str, span: Span) -> Option<(FieldId, &'static FieldDef)> {
        match schema::lookup(name) {
            Some(id) => Some((id, schema::def(id))),
            None => {
                let mut d = Diagnostic::error(
                    Code::UnknownField,
                    Some(span),
                    format!("unknown field `{name}`"),
                )
                .label("not in the schema (see `enforcer policy fields`)");
                if let Some(s) = schema::suggest(name) {
                    d = d.note(None, format!("did you mean `{s}`?"));
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// Resolves the right side of `in` (and friends) to a value set.
    pub(crate) fn values(&mut self, e: &Expr) -> Option<ValueSet> {
        match &e.kind {
            ExprKind::List(items) => {
                let mut set = ValueSet::default();
                let mut ok = true;
                for it in items {
                    match self.values(it) {
                        Some(v) => set.extend(&v),
                        None => ok = false,
                    }
                }
                ok.then_some(set)
            }
            ExprKind::Paren(inner) => self.values(inner),
            ExprKind::Lit(l) => values::from_lit(l, e.span, &mut self.diags),
            ExprKind::Ident(name) if !name.contains('.') => {
                if let Some(l) = self.lists.get(name) {
                    return Some(l.values.clone());
                }
                match self.macro_state(name, e.span) {
                    Some(MacroState::Values(v)) => Some(v),
                    Some(MacroState::Cond(..)) => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::TypeMismatch,
                                Some(e.span),
                                format!("macro `{name}` is a condition, not a value list"),
                            )
                            .label("expected a list"),
                        );
                        None
                    }
                    Some(MacroState::Failed | MacroState::Visiting) => None,
                    None => {
                        if !self.macros.contains_key(name) {
                            self.diags.push(unknown_name(name, e.span));
                        }
                        None
                    }
                }
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        Some(e.span),
                        "expected a value, a list name or `( ... )`",
                    )
                    .label("not a value"),
                );
                None
            }
        }
    }

    fn compare(
        &mut self,
        def: &'static FieldDef,
        op: CmpOp,
        op_span: Span,
        rhs: &Expr,
    ) -> Option<(bool, Matcher)> {
        let positive = op.positive().unwrap_or(op);
        let negate = op.positive().is_some();
        let m = match positive {
            CmpOp::In => {
                if let (Type::Ip, ExprKind::Lit(Lit::Cidr(_) | Lit::Ip(_))) = (def.ty, &rhs.kind) {
                    let set = self.values(rhs)?;
                    return Some((negate, Matcher::IpIn(crate::ipset::IpSet::new(set.nets))));
                }
                let mut set = self.values(rhs)?;
                if def.name == schema::DNS_NAME_FIELD {
                    for v in &mut set.strs {
                        *v = values::fold_dns_name(v);
                    }
                }
                values::set_matcher(def, &set, rhs.span, &mut self.diags)?
            }
            CmpOp::Contains | CmpOp::StartsWith | CmpOp::EndsWith => {
                if def.ty != Type::Str {
                    self.diags.push(type_err(def, op, op_span));
                    return None;
                }
                let set = self.values(rhs)?;
                values::substring_matcher(positive, &set, rhs.span, &mut self.diags)?
            }
            CmpOp::Match => {
                let lit = lit_of(rhs);
                match (def.ty, lit) {
                    (Type::Str, Some(Lit::Regex(p))) => {
                        Matcher::Regex(values::regex(p, rhs.span, &mut self.diags)?)
                    }
                    (Type::Str, Some(Lit::Glob(p))) => {
                        Matcher::Glob(values::glob(p, rhs.span, &mut self.diags)?)
                    }
                    (Type::Str, _) => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::TypeMismatch,
                                Some(rhs.span),
                                format!("`{op}` needs a regex or glob literal"),
                            )
                            .label("write r\"...\" for a regex or ~\"...\" for a glob"),
                        );
                        return None;
                    }
                    _ => {
                        self.diags.push(type_err(def, op, op_span));
                        return None;
                    }
                }
            }
            CmpOp::Eq | CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                let Some(lit) = lit_of(rhs) else {
                    self.diags.push(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            Some(rhs.span),
                            format!("`{op}` needs a literal value on its right"),
                        )
                        .label("expected a literal; use `in` for a list"),
                    );
                    return None;
                };
                let ordered = positive != CmpOp::Eq;
                match (def.ty, lit) {
                    (Type::Str, Lit::Str(s)) if !ordered && def.name == schema::DNS_NAME_FIELD => {
                        Matcher::StrEq(values::fold_dns_name(s).into())
                    }
                    (Type::Str, Lit::Str(s)) if !ordered => Matcher::StrEq(s.as_str().into()),
                    (Type::Int, Lit::Int(v)) => Matcher::Int(positive, *v),
                    (Type::Bool, Lit::Bool(b)) if !ordered => Matcher::Bool(*b),
                    (Type::Duration, Lit::Duration(d)) => Matcher::Dur(positive, *d),
                    (Type::Ip, Lit::Ip(a)) if !ordered => Matcher::IpEq(*a),
                    (Type::Str | Type::Bool | Type::Ip, _) if ordered => {
                        self.diags.push(type_err(def, op, op_span));
                        return None;
                    }
                    (Type::Str, Lit::Glob(_) | Lit::Regex(_)) => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::TypeMismatch,
                                Some(op_span),
                                format!("`{op}` compares exactly; use `=~` to match a pattern"),
                            )
                            .label("use `=~` (or `!~`) with a glob or regex"),
                        );
                        return None;
                    }
                    (Type::Ip, Lit::Cidr(_)) => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::TypeMismatch,
                                Some(op_span),
                                "an address is compared with a network using `in`",
                            )
                            .label("use `in` with a CIDR"),
                        );
                        return None;
                    }
                    (ty, lit) => {
                        self.diags.push(
                            Diagnostic::error(
                                Code::TypeMismatch,
                                Some(rhs.span),
                                format!(
                                    "type mismatch: `{}` is of type {ty}, this is a {} literal",
                                    def.name,
                                    lit.type_name()
                                ),
                            )
                            .label(format!("expected a {ty} value")),
                        );
                        return None;
                    }
                }
            }
            CmpOp::Ne | CmpOp::NotIn | CmpOp::NotMatch => return None,
        };
        Some((negate, m))
    }
}

fn lit_of(e: &Expr) -> Option<&Lit> {
    match &e.kind {
        ExprKind::Lit(l) => Some(l),
        ExprKind::Paren(inner) => lit_of(inner),
        _ => None,
    }
}

fn is_value_list(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::List(_) => true,
        ExprKind::Lit(l) => !matches!(l, Lit::Bool(_)),
        ExprKind::Paren(inner) => matches!(inner.kind, ExprKind::Lit(_)) && is_value_list(inner),
        _ => false,
    }
}

fn type_err(def: &FieldDef, op: CmpOp, op_span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::TypeMismatch,
        Some(op_span),
        format!(
            "type mismatch: operator `{op}` does not apply to `{}` (type {})",
            def.name, def.ty
        ),
    )
    .label(format!("not defined for {}", def.ty))
}

fn unknown_name(name: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::UnknownName,
        Some(span),
        format!("unknown macro or list `{name}`"),
    )
    .label("no macro or list has this name")
}

fn duplicate(what: &str, name: &str, span: Span, prev: Span) -> Diagnostic {
    Diagnostic::error(
        Code::Duplicate,
        Some(span),
        format!("duplicate {what} name `{name}`"),
    )
    .label("defined again here")
    .note(Some(prev), "first defined here")
}
