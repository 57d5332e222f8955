//! Loading: reads a policy file or a directory of them (`*.yaml` / `*.yml`, merged in file-name
//! order), their list files, and runs YAML parsing, structure reading, checking and lowering,
//! collecting every diagnostic. Inputs are bounded: file sizes, file count, rule count. The
//! `network.extra_public_ranges` of all files are merged (union).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;

use crate::check::Checker;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::doc::{self, ListSource, RawFile};
use crate::lists::{self, ListDef, MAX_LIST_ITEMS};
use crate::lower::{self, Blocker};
use crate::model::{Enforcement, RuleInfo};
use crate::policy::{CompiledPolicy, MAX_DNS_PORTS};
use crate::schema::Kind;
use crate::source::{SourceMap, Span};
use crate::yaml;

/// Largest policy file accepted.
pub const MAX_POLICY_FILE: u64 = 4 << 20;
/// Largest list file accepted.
pub const MAX_LIST_FILE: u64 = 16 << 20;
/// Most policy files in a directory.
pub const MAX_FILES: usize = 1000;
/// Most rules in a policy.
pub const MAX_RULES: usize = 100_000;

/// Loads a policy file or directory.
pub fn load(path: &Path) -> Result<CompiledPolicy, Diagnostics> {
    let mut l = Loader::default();
    let files = match l.policy_files(path) {
        Some(f) => f,
        None => return Err(l.finish_err()),
    };
    let mut inputs = Vec::new();
    for f in files {
        match read_capped(&f, MAX_POLICY_FILE) {
            Ok(text) => inputs.push((f, text)),
            Err(msg) => l.diags.push(Diagnostic::error(
                Code::Io,
                None,
                format!("{}: {msg}", f.display()),
            )),
        }
    }
    l.run(inputs)
}

/// Loads a policy from in-memory text (tests, fuzzing). List `file:` entries resolve relative
/// to the current directory.
pub fn load_str(name: &str, text: &str) -> Result<CompiledPolicy, Diagnostics> {
    Loader::default().run(vec![(PathBuf::from(name), text.to_string())])
}

/// The error for a deny rule the kernel cannot match.
fn not_lowerable(id: &str, b: &Blocker) -> Diagnostic {
    let mut d = Diagnostic::error(
        Code::NotLowerable,
        Some(b.span),
        format!("rule `{id}` has action `deny` but the kernel cannot match its expression"),
    )
    .label(b.reason.clone());
    for (name, use_span) in &b.via {
        d = d.note(Some(*use_span), format!("through macro `{name}` used here"));
    }
    d.note(
        None,
        "a deny rule must be a disjunction (`||`) of equality or string-list membership tests on `exec.file.name`, `exec.file.path` or `payload.stratum.method`; or, on `dns.question.name` (strings, domain lists) or `connect.addr.ip` (addresses, CIDRs, with `connect.addr.is_public`), positive tests with optional exclusions (`not in`, `!=`, `!`); use `kill` (after the fact, in userspace) or `alert`",
    )
}

/// Whether `field` exists only in DNS responses.
fn reads_response_field(field: crate::schema::FieldId) -> bool {
    let name = crate::schema::def(field).name;
    name == "dns.is_response" || name == "dns.rcode" || name.starts_with("dns.answers.")
}

/// Whether every enabled connect rule is in the connect plan (lowered and not blocked by
/// `build_plan`, or a learned-address rule, whose addresses enter the plan as learned): then a connect whose lookup ends at no rule can concern no rule, and the
/// kernel need not report it.
fn connect_plan_complete(
    infos: &[RuleInfo],
    kernel_rules: &[(u32, lower::Lowered)],
    blocked: &[(u32, Blocker)],
    learned_rules: &[u32],
) -> bool {
    let in_plan = |index: u32| {
        learned_rules.contains(&index)
            || kernel_rules
                .iter()
                .any(|(i, l)| *i == index && matches!(l, lower::Lowered::Connect(_)))
                && !blocked.iter().any(|(i, _)| *i == index)
    };
    (0u32..)
        .zip(infos)
        .filter(|(_, r)| r.event_kind == Kind::Connect && !r.disabled)
        .all(|(i, _)| in_plan(i))
}

fn read_capped(path: &Path, cap: u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > cap {
        return Err(format!("file larger than {cap} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "file is not UTF-8".to_string())
}

#[derive(Default)]
struct Loader {
    sources: SourceMap,
    diags: Vec<Diagnostic>,
}

impl Loader {
    fn finish_err(self) -> Diagnostics {
        Diagnostics::new(self.diags, Arc::new(self.sources))
    }

    fn policy_files(&mut self, path: &Path) -> Option<Vec<PathBuf>> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    Code::Io,
                    None,
                    format!("{}: {e}", path.display()),
                ));
                return None;
            }
        };
        if !meta.is_dir() {
            return Some(vec![path.to_path_buf()]);
        }
        let rd = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    Code::Io,
                    None,
                    format!("{}: {e}", path.display()),
                ));
                return None;
            }
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
            })
            .collect();
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        if files.is_empty() {
            self.diags.push(Diagnostic::error(
                Code::Io,
                None,
                format!("{}: no *.yaml policy files", path.display()),
            ));
            return None;
        }
        if files.len() > MAX_FILES {
            self.diags.push(Diagnostic::error(
                Code::Limit,
                None,
                format!("more than {MAX_FILES} policy files"),
            ));
            return None;
        }
        Some(files)
    }

    fn run(mut self, inputs: Vec<(PathBuf, String)>) -> Result<CompiledPolicy, Diagnostics> {
        let mut raws: Vec<(PathBuf, RawFile)> = Vec::new();
        let mut names = Vec::new();
        for (path, text) in inputs {
            names.push(path.display().to_string());
            let id = self.sources.add(&path, text);
            let Some(src) = self.sources.file(id) else {
                continue;
            };
            match yaml::parse(id, src) {
                Ok(Some(root)) => {
                    let raw = doc::read(&root, src, &mut self.diags);
                    raws.push((path, raw));
                }
                Ok(None) => {}
                Err(d) => self.diags.push(d),
            }
        }
        let mut lists = Vec::new();
        let mut macros = Vec::new();
        let mut rules = Vec::new();
        let mut extra_public = BTreeSet::new();
        let mut dns_ports = BTreeSet::from([53u16]);
        let mut record_all_connects = false;
        for (path, raw) in raws {
            record_all_connects |= raw.record_all_connects;
            for (item, span) in &raw.dns_server_ports {
                let port = item.trim().parse::<u16>().ok().filter(|p| *p != 0);
                let diag = match port {
                    Some(p) if dns_ports.len() < MAX_DNS_PORTS || dns_ports.contains(&p) => {
                        dns_ports.insert(p);
                        continue;
                    }
                    Some(_) => Diagnostic::error(
                        Code::BadValue,
                        Some(*span),
                        format!("more than {MAX_DNS_PORTS} DNS server ports (53 included)"),
                    )
                    .label("the kernel compares at most this many"),
                    None => Diagnostic::error(
                        Code::BadValue,
                        Some(*span),
                        format!("invalid DNS server port `{}`", item.trim()),
                    )
                    .label("expected a port, 1 to 65535"),
                };
                self.diags.push(diag);
            }
            for (item, span) in &raw.extra_public_ranges {
                match lists::parse_net(item.trim()) {
                    Some(n) => {
                        extra_public.insert(n);
                    }
                    None => self.diags.push(
                        Diagnostic::error(
                            Code::BadValue,
                            Some(*span),
                            format!("invalid extra public range `{}`", item.trim()),
                        )
                        .label("expected an address or CIDR"),
                    ),
                }
            }
            for l in raw.lists {
                let items = match &l.source {
                    ListSource::Items(items) => items.clone(),
                    ListSource::File(rel, span) => self.list_file(&path, rel, *span),
                };
                if items.len() > MAX_LIST_ITEMS {
                    self.diags.push(Diagnostic::error(
                        Code::Limit,
                        Some(l.name_span),
                        format!("list `{}` has more than {MAX_LIST_ITEMS} items", l.name),
                    ));
                    continue;
                }
                let values = lists::type_items(l.ty, &items, &mut self.diags);
                lists.push(ListDef {
                    name: l.name,
                    span: l.name_span,
                    ty: l.ty,
                    values,
                });
            }
            macros.extend(raw.macros);
            rules.extend(raw.rules);
        }
        if rules.len() > MAX_RULES {
            self.diags.push(Diagnostic::error(
                Code::Limit,
                None,
                format!("more than {MAX_RULES} rules"),
            ));
            return Err(self.finish_err());
        }
        let mut checker = Checker::new(lists, macros);
        checker.check_macros();
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut checked = Vec::new();
        for r in &rules {
            if let Some(prev) = seen.get(&r.id) {
                checker.diags.push(
                    Diagnostic::error(
                        Code::Duplicate,
                        Some(r.id_span),
                        format!("duplicate rule id `{}`", r.id),
                    )
                    .label("defined again here")
                    .note(Some(*prev), "first defined here"),
                );
                continue;
            }
            seen.insert(r.id.clone(), r.id_span);
            if let Some(c) = checker.check_rule(r) {
                checked.push(c);
            }
        }
        self.diags.append(&mut checker.diags);
        let mut infos = Vec::with_capacity(checked.len());
        let mut conds = Vec::with_capacity(checked.len());
        let mut kernel_rules = Vec::new();
        let mut learned_rules = Vec::new();
        let mut file_rules = Vec::new();
        let mut hash_rules = Vec::new();
        let mut args_rules = Vec::new();
        let mut hash_needed = Vec::with_capacity(checked.len());
        for c in checked {
            let index = u32::try_from(infos.len()).unwrap_or(u32::MAX);
            let blocks = c.raw.actions.blocks();
            let file_rule =
                lower::files::is_file_kind(c.kind).then(|| lower::files::analyze(&c.cond, c.kind));
            let hashes = lower::hash_values(&c.cond);
            let learned = match lower::learned_rule(&c.cond) {
                Ok(learned) => learned,
                Err(b) => {
                    self.diags.push(not_lowerable(&c.raw.id, &b));
                    continue;
                }
            };
            let analyzed = if let Some(rule) = file_rule {
                // File rules: watched paths for every rule, kernel enforcement for exact
                // path rules (`lower::files`).
                let kernel = blocks && rule.blocker.is_none();
                let blocker = rule.blocker.clone();
                if !c.raw.disabled {
                    file_rules.push((index, kernel, rule));
                }
                match blocker {
                    Some(b) if blocks => Err(Some(b)),
                    _ => Err(None),
                }
            } else if learned {
                if !c.raw.disabled {
                    learned_rules.push(index);
                }
                Err(None)
            } else {
                lower::analyze(&c.cond).map_err(Some)
            };
            // A kill rule on argument URL schemes or flags: the kernel kills part of its matches
            // before the program runs; the rule stays a userspace rule for the rest.
            if blocks
                && !c.raw.actions.deny
                && !c.raw.disabled
                && c.kind == Kind::Exec
                && matches!(analyzed, Err(Some(_)))
                && let Some(rule) = lower::args::analyze(&c.cond)
            {
                args_rules.push((index, rule));
            }
            let (kernel, reason) = match analyzed {
                // Enforced in the kernel through the addresses the daemon learns, or a file
                // rule on exact paths (its watch entries carry its actions).
                Err(None) if blocks => (Enforcement::Kernel, None),
                Err(None) => (Enforcement::Userspace, None),
                Ok(lowered) if blocks => {
                    if !c.raw.disabled {
                        kernel_rules.push((index, lowered));
                    }
                    (Enforcement::Kernel, None)
                }
                // An alert-only connect rule still enters the connect plan, as a record-only
                // entry: the kernel then reports just the connects some rule is about.
                Ok(lowered @ lower::Lowered::Connect(_)) => {
                    if !c.raw.disabled {
                        kernel_rules.push((index, lowered));
                    }
                    (Enforcement::Userspace, None)
                }
                Ok(_) => (Enforcement::Userspace, None),
                Err(Some(b)) if c.raw.actions.deny => {
                    self.diags.push(not_lowerable(&c.raw.id, &b));
                    continue;
                }
                Err(Some(b)) if blocks => (Enforcement::Userspace, Some(self.reason(&b))),
                Err(Some(_)) => (Enforcement::Userspace, None),
            };
            let pos = self
                .sources
                .file(c.raw.id_span.file)
                .map(|f| {
                    (
                        f.path.display().to_string(),
                        f.position(c.raw.id_span.start as usize).line,
                    )
                })
                .unwrap_or_default();
            infos.push(RuleInfo {
                id: c.raw.id,
                description: c.raw.description,
                severity: c.raw.severity,
                tags: c.raw.tags,
                actions: c.raw.actions,
                mode: c.raw.mode,
                kernel,
                event_kind: c.kind,
                disabled: c.raw.disabled,
                every: c.raw.every,
                file: pos.0,
                line: pos.1,
                userspace_reason: reason,
                kill_scope: c.raw.kill_scope,
                breaker: c.raw.breaker,
                dns_responses: c.cond.reads(&reads_response_field),
            });
            // A rule whose only tests are hash lists that are all empty never matches: it
            // needs no hashing at all.
            let reads_hash = crate::fields_used::reads(&c.cond, "exec.file.hash.");
            hash_needed.push(reads_hash && hashes.as_ref().is_none_or(|v| !v.is_empty()));
            if let Some(values) = hashes
                && blocks
                && !c.raw.disabled
                && !values.is_empty()
            {
                hash_rules.push((index, values));
            }
            conds.push(c.cond);
        }
        let extra_public: Vec<IpNet> = extra_public.into_iter().collect();
        let (mut plan, blocked) = lower::build_plan(&kernel_rules, &extra_public);
        for (index, b) in &blocked {
            let Some(info) = infos.get_mut(*index as usize) else {
                continue;
            };
            if info.actions.deny {
                self.diags.push(not_lowerable(&info.id, b));
            } else if info.actions.blocks() {
                info.kernel = Enforcement::Userspace;
                info.userspace_reason = Some(self.reason(b));
            }
        }
        plan.connect_filtered = !record_all_connects
            && connect_plan_complete(&infos, &kernel_rules, &blocked, &learned_rules);
        plan.learned_rules = learned_rules;
        plan.file_rules = !file_rules.is_empty();
        let (file_watches, file_filtered) = lower::files::entries(&file_rules);
        plan.file_watches = file_watches;
        plan.file_filtered = file_filtered;
        plan.exec_hashes = lower::hash_entries(&hash_rules);
        let args = lower::args::entries(&args_rules);
        (
            plan.exec_arg_schemes,
            plan.exec_arg_flags,
            plan.exec_args_spared,
        ) = args;
        if !self.diags.is_empty() {
            return Err(self.finish_err());
        }
        let mut policy = CompiledPolicy::new(
            infos,
            conds,
            plan,
            extra_public,
            Arc::new(self.sources),
            names,
        );
        policy.dns_ports = dns_ports.into_iter().collect();
        policy.hash_needed = hash_needed;
        Ok(policy)
    }

    /// Why a blocking rule runs in userspace, with the place.
    fn reason(&self, b: &Blocker) -> String {
        format!("{} (at {})", b.reason, self.sources.locate(b.span))
    }

    fn list_file(&mut self, policy: &Path, rel: &str, span: Span) -> Vec<(String, Span)> {
        let base = policy.parent().unwrap_or(Path::new("."));
        let path = base.join(rel);
        let text = match read_capped(&path, MAX_LIST_FILE) {
            Ok(t) => t,
            Err(msg) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::Io,
                        Some(span),
                        format!("cannot read list file {}: {msg}", path.display()),
                    )
                    .label("relative to the policy file"),
                );
                return Vec::new();
            }
        };
        let items = lists::file_items(&text);
        let id = self.sources.add(&path, text);
        items
            .into_iter()
            .map(|(s, off)| (s.clone(), Span::new(id, off, off + s.len())))
            .collect()
    }
}
