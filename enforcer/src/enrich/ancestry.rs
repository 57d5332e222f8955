//! Ancestor chains built once and shared: most execs of a busy host come from a few parents
//! (a shell, a build tool, a service manager), so the same chain was cloned, string by string,
//! and serialized again for every one of them (about a tenth of the daemon's work per exec in
//! the exec storm, benches/README.md). [`AncestryMemo`] keeps, per parent, the chain's parts
//! (which the rules read) and its JSON (which the audit log gets), and hands out the shared
//! copy while every ancestor's cached record still says what its part says.
//!
//! A hit is exact, never guessed: each part is compared with the cached record it came from,
//! member by member (pid, parent, start time, uid, `comm`, executable path), so an ancestor
//! that execs, changes its uid, exits and is reparented, or whose pid is reused, gives a new
//! chain at once.

use std::{collections::HashMap, fmt, ops::Deref, rc::Rc};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::{process_cache::ProcessRecord, process_part::AncestorPart};

/// Parents whose chain is kept; the memo is emptied when it is full (the chains of the parents
/// still active are built again at their next exec).
pub(crate) const MEMO_PARENTS: usize = 256;

/// An event's `process.ancestors` (parent first): the parts and their JSON array, shared by
/// every event of the same chain.
#[derive(Clone)]
pub(crate) struct Ancestors {
    parts: Rc<[AncestorPart]>,
    json: Rc<RawValue>,
}

impl Ancestors {
    /// The chain of `parts`, serialized now.
    pub(crate) fn new(parts: Vec<AncestorPart>) -> Self {
        let json = match serde_json::value::to_raw_value(&parts) {
            Ok(json) => json,
            // Not reachable: the parts have string keys and no floats.
            Err(_) => RawValue::NULL.to_owned(),
        };
        Self {
            parts: parts.into(),
            json: json.into(),
        }
    }

    /// Whether the chain is still what `records` (the ancestors' cached records, parent first)
    /// say.
    fn describes(&self, records: &[&ProcessRecord]) -> bool {
        self.parts.len() == records.len()
            && self
                .parts
                .iter()
                .zip(records)
                .all(|(part, rec)| part.describes(rec))
    }
}

impl Deref for Ancestors {
    type Target = [AncestorPart];

    fn deref(&self) -> &[AncestorPart] {
        &self.parts
    }
}

impl fmt::Debug for Ancestors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.parts.iter()).finish()
    }
}

impl Serialize for Ancestors {
    /// The JSON serialized when the chain was built: what serializing the parts writes.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

/// The chains of recent parents, by the parent's pid (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct AncestryMemo {
    by_parent: HashMap<u32, Ancestors, foldhash::fast::RandomState>,
}

impl AncestryMemo {
    /// The chain of `records` (the ancestors' cached records, parent first): the kept one
    /// when it still describes them, else a new one, kept for the next event of this parent.
    pub(crate) fn chain(&mut self, records: &[&ProcessRecord]) -> Ancestors {
        let Some(parent) = records.first() else {
            return Ancestors::new(Vec::new());
        };
        if let Some(kept) = self.by_parent.get(&parent.tgid)
            && kept.describes(records)
        {
            return kept.clone();
        }
        let chain = Ancestors::new(records.iter().map(|rec| AncestorPart::new(rec)).collect());
        if self.by_parent.len() >= MEMO_PARENTS && !self.by_parent.contains_key(&parent.tgid) {
            self.by_parent.clear();
        }
        self.by_parent.insert(parent.tgid, chain.clone());
        chain
    }

    /// How many parents' chains are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_parent.len()
    }
}

#[cfg(test)]
#[path = "ancestry_tests.rs"]
mod tests;
