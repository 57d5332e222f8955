//! The shape of DNS and connect rules the kernel can match. Such a rule is any `&&` / `||` /
//! `!` (through macros, with `true` / `false`) of tests on the family's fields:
//!
//! - DNS: `dns.question.name` with `==` / `!=` a string, `in` / `not in` a list of strings
//!   (exact names) and domains (the name or a sub-domain), inline or named;
//! - connect: `connect.addr.ip` with `==` / `!=` an address, `in` / `not in` addresses and
//!   CIDRs, and `connect.addr.is_public` (as a condition, `== true|false`, negated).
//!
//! Typical: `dns.question.name in pools && dns.question.name not in excluded`. The kernel
//! only looks listed keys up, so the expression must hold for no name (address) outside its
//! lists: `dns.question.name not in x` alone is a [`Blocker`]. Exact DNS values must be valid
//! names ([`dns_key`]). Tests on other fields of the kind (`dns.question.type`,
//! `connect.addr.port`, `connect.protocol`) are blockers: the kernel does not see them.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Blocker, block};
use crate::event::Val;
use crate::ir::{Cond, CondNode, Matcher, Test};
use crate::net;
use crate::plan::{MAX_DNS_LABEL_LEN, MAX_DNS_NAME_LEN};
use crate::schema::{self, KernelFamily};
use crate::source::Span;

/// A DNS rule the kernel can match: its condition (evaluated per key with the evaluator's own
/// matchers when the plan is built) and the keys it lists.
#[derive(Debug, Clone)]
pub struct DnsRule {
    /// The rule's condition.
    pub cond: Cond,
    /// Exact names it compares with (valid [`dns_key`]s), in expression order.
    pub names: Vec<String>,
    /// Domains of its domain lists (valid [`dns_key`]s), in expression order.
    pub domains: Vec<String>,
}

/// A connect rule the kernel can match: its condition and the prefixes it lists.
#[derive(Debug, Clone)]
pub struct NetRule {
    /// The rule's condition.
    pub cond: Cond,
    /// Networks of its `connect.addr.ip` tests (canonical; addresses as `/32` or `/128`).
    pub nets: Vec<IpNet>,
    /// Its first `connect.addr.is_public` test and the macros it is reached through: where
    /// a blocker points when the test is not constant over the range of a prefix.
    pub public_test: Option<(Span, Vec<(String, Span)>)>,
}

/// A DNS name as a kernel key: lowercased (ASCII), without one trailing dot, non-empty, at
/// most [`MAX_DNS_NAME_LEN`] bytes, labels of 1 to [`MAX_DNS_LABEL_LEN`] bytes, no NUL or
/// whitespace. The error says what is wrong (to follow "value `v` ").
pub fn dns_key(v: &str) -> Result<String, String> {
    let key = crate::values::fold_dns_name(v);
    if key.is_empty() {
        return Err("is empty, not a DNS name".into());
    }
    if key.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if key.chars().any(char::is_whitespace) {
        return Err("contains whitespace, which no DNS name the kernel sees has".into());
    }
    if key.len() > MAX_DNS_NAME_LEN {
        return Err(format!(
            "is longer than {MAX_DNS_NAME_LEN} bytes, the DNS name limit"
        ));
    }
    if key.split('.').any(str::is_empty) {
        return Err("has an empty label (`..` or a leading dot)".into());
    }
    if key.split('.').any(|l| l.len() > MAX_DNS_LABEL_LEN) {
        return Err(format!(
            "has a label longer than {MAX_DNS_LABEL_LEN} bytes, the DNS label limit"
        ));
    }
    Ok(key)
}

/// A name no list holds (values are validated: none contains NUL), used to evaluate a rule
/// "outside its lists".
pub(super) const UNLISTED: &str = "\0";

/// Evaluates `c` like [`crate::policy::eval_cond`], with `leaf` deciding each test.
pub(super) fn eval_leaves(c: &Cond, leaf: &mut dyn FnMut(&Test) -> bool) -> bool {
    match &c.node {
        CondNode::Const(b) => *b,
        CondNode::And(items) => items.iter().all(|i| eval_leaves(i, leaf)),
        CondNode::Or(items) => items.iter().any(|i| eval_leaves(i, leaf)),
        CondNode::Not(inner) => !eval_leaves(inner, leaf),
        CondNode::Macro(_, body) => eval_leaves(body, leaf),
        CondNode::Test(t) => leaf(t),
    }
}

/// Whether a DNS rule holds for question name `name`.
pub(super) fn dns_holds(r: &DnsRule, name: &str) -> bool {
    let v = Val::Str(name.into());
    eval_leaves(&r.cond, &mut |t| t.eval(Some(&v)))
}

/// Whether a connect rule holds for destination `ip` when its `is_public` is `public`.
pub(super) fn net_holds(r: &NetRule, ip: IpAddr, public: bool) -> bool {
    let (ip, public) = (Val::Ip(ip), Val::Bool(public));
    eval_leaves(&r.cond, &mut |t| match schema::def(t.field).kernel {
        Some(KernelFamily::ConnectPublic) => t.eval(Some(&public)),
        _ => t.eval(Some(&ip)),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Dns,
    Connect,
}

#[derive(Default)]
struct Walk {
    names: Vec<String>,
    domains: Vec<String>,
    nets: Vec<IpNet>,
    public_test: Option<(Span, Vec<(String, Span)>)>,
    /// Macros entered, outermost first.
    via: Vec<(String, Span)>,
}

impl Walk {
    fn block(&self, span: Span, reason: String) -> Blocker {
        let mut b = block(span, reason);
        b.via = self.via.clone();
        b
    }

    fn walk(&mut self, family: Family, c: &Cond) -> Result<(), Blocker> {
        match &c.node {
            CondNode::Const(_) => Ok(()),
            CondNode::And(items) | CondNode::Or(items) => {
                items.iter().try_for_each(|i| self.walk(family, i))
            }
            CondNode::Not(inner) => self.walk(family, inner),
            CondNode::Macro(name, body) => {
                self.via.push((name.to_string(), c.span));
                let r = self.walk(family, body);
                self.via.pop();
                r
            }
            CondNode::Test(t) => match family {
                Family::Dns => self.dns_test(t, c.span),
                Family::Connect => self.connect_test(t, c.span),
            },
        }
    }

    fn dns_test(&mut self, t: &Test, span: Span) -> Result<(), Blocker> {
        let def = schema::def(t.field);
        if def.kernel != Some(KernelFamily::DnsName) {
            return Err(self.block(
                span,
                format!(
                    "`{}` is not visible to the kernel plan (the DNS hook matches `{}` only)",
                    def.name,
                    schema::DNS_NAME_FIELD
                ),
            ));
        }
        let parts = match &*t.matcher {
            Matcher::Any(ms) => ms.iter().collect(),
            m => vec![m],
        };
        for m in parts {
            match m {
                Matcher::StrEq(v) => self.dns_name(v, span)?,
                Matcher::StrIn(set) => {
                    let mut vs: Vec<&str> = set.iter().map(|s| &**s).collect();
                    vs.sort_unstable();
                    for v in vs {
                        self.dns_name(v, span)?;
                    }
                }
                Matcher::Domain(set) => {
                    let mut vs: Vec<&str> = set.iter().map(|s| &**s).collect();
                    vs.sort_unstable();
                    for v in vs {
                        let key = dns_key(v)
                            .map_err(|why| self.block(span, format!("value `{v}` {why}")))?;
                        self.domains.push(key);
                    }
                }
                _ => {
                    return Err(self.block(
                        span,
                        format!(
                            "the kernel matches `{}` only by equality or membership in string and domain lists",
                            def.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn dns_name(&mut self, v: &str, span: Span) -> Result<(), Blocker> {
        let key = dns_key(v).map_err(|why| self.block(span, format!("value `{v}` {why}")))?;
        self.names.push(key);
        Ok(())
    }

    fn connect_test(&mut self, t: &Test, span: Span) -> Result<(), Blocker> {
        let def = schema::def(t.field);
        match (def.kernel, &*t.matcher) {
            (Some(KernelFamily::ConnectAddr), Matcher::IpEq(a)) => {
                self.nets.push(IpNet::from(net::canonical(*a)));
            }
            (Some(KernelFamily::ConnectAddr), Matcher::IpIn(nets)) => {
                self.nets
                    .extend(nets.nets().iter().map(|n| net::canonical_net(*n)));
            }
            (Some(KernelFamily::ConnectAddr), _) => {
                return Err(self.block(
                    span,
                    format!(
                        "the kernel matches `{}` only by equality or membership in address and CIDR lists",
                        def.name
                    ),
                ));
            }
            (Some(KernelFamily::ConnectPublic), Matcher::Bool(_)) => {
                if self.public_test.is_none() {
                    self.public_test = Some((span, self.via.clone()));
                }
            }
            _ => {
                return Err(self.block(
                    span,
                    format!(
                        "`{}` is not visible to the kernel plan (the connect hook matches `connect.addr.ip` and `connect.addr.is_public` only)",
                        def.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A DNS rule of `c`, or why the kernel cannot match it.
pub(super) fn dns(c: &Cond) -> Result<DnsRule, Blocker> {
    let mut w = Walk::default();
    w.walk(Family::Dns, c)?;
    let r = DnsRule {
        cond: c.clone(),
        names: w.names,
        domains: w.domains,
    };
    if dns_holds(&r, UNLISTED) {
        return Err(block(
            c.span,
            "the expression holds for names in none of its lists, and the kernel looks up listed names and domains only (a DNS deny rule needs a positive `==` / `in` term)",
        ));
    }
    Ok(r)
}

/// A connect rule of `c`, or why the kernel cannot match it.
pub(super) fn connect(c: &Cond) -> Result<NetRule, Blocker> {
    let mut w = Walk::default();
    w.walk(Family::Connect, c)?;
    let r = NetRule {
        cond: c.clone(),
        nets: w.nets,
        public_test: w.public_test,
    };
    // Outside every listed prefix, each address test is false (its negation true).
    let outside = |public: bool| {
        let public = Val::Bool(public);
        eval_leaves(&r.cond, &mut |t| match schema::def(t.field).kernel {
            Some(KernelFamily::ConnectPublic) => t.eval(Some(&public)),
            _ => t.negate,
        })
    };
    if outside(false) || outside(true) {
        return Err(block(
            c.span,
            "the expression holds for addresses in none of its networks, and the kernel looks up listed prefixes only (a connect deny rule needs a positive `==` / `in` term on `connect.addr.ip`)",
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_keys_are_validated_and_normalised() {
        assert_eq!(dns_key("Pool.Example.COM."), Ok("pool.example.com".into()));
        assert_eq!(dns_key("a"), Ok("a".into()));
        for bad in ["", ".", "a..b", ".a", "a b", "a\0b", "a.b.."] {
            assert!(dns_key(bad).is_err(), "{bad:?}");
        }
        let label = "a".repeat(63);
        assert!(dns_key(&label).is_ok());
        assert!(dns_key(&format!("{label}a")).is_err());
        let name = [label.as_str(); 4].join(".");
        assert_eq!(name.len(), 255);
        assert!(dns_key(&name).is_err());
        assert!(dns_key(&name[2..]).is_ok());
    }
}
