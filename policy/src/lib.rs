//! `enforcer-policy`: the policy language of the enforcement engine.
//!
//! Pipeline: YAML files ([`yaml`], [`doc`]) → expressions ([`lexer`], [`parser`], [`ast`]) →
//! checked against the field registry ([`schema`], [`check`], [`values`]) → compiled conditions
//! ([`ir`]) → [`CompiledPolicy`]: [`CompiledPolicy::eval`] on decoded [`Event`]s (bucketed and
//! indexed by [`index`]) and [`CompiledPolicy::lower`] to an abstract [`KernelPlan`]
//! ([`lower`], [`plan`]); [`net`] classifies addresses for both. Every problem is a
//! [`Diagnostic`] with file, line and column; a load reports all of them ([`Diagnostics`]).
//! [`report`] renders what the CLI prints.
#![forbid(unsafe_code)]

pub mod ast;
pub mod check;
pub mod diag;
pub mod doc;
pub mod event;
pub mod fields_used;
pub mod index;
pub mod ipset;
pub mod ir;
pub mod lexer;
pub mod lists;
pub mod load;
pub mod lower;
pub mod model;
pub mod net;
pub mod parser;
pub mod plan;
pub mod policy;
pub mod ratelimit;
pub mod report;
pub mod schema;
pub mod selection;
pub mod source;
pub mod stratum;
pub mod values;
pub mod yaml;

pub use diag::{Code, Diagnostic, Diagnostics};
pub use event::{Event, EventError, Given, Val};
pub use index::Scratch;
pub use load::{load, load_str};
pub use model::{Actions, BreakerOverride, Enforcement, KillScope, Mode, RuleInfo, Severity};
pub use plan::{FileWatchEntry, KernelPlan, PlanEntry};
pub use policy::{CompiledPolicy, MAX_DNS_PORTS, Match};
pub use schema::Kind;
