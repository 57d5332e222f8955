//! Member offset resolution over a parsed [`TypeTable`]: dotted member paths,
//! embedded structs/unions, anonymous members, modifiers and bitfields.

use super::BtfError;
use super::parse::{Kind, TypeTable};

/// Bound on typedef/modifier chains and anonymous-member nesting, so that a
/// malicious or corrupt cyclic BTF cannot recurse or loop forever.
const MAX_DEPTH: u32 = 32;

/// A member found inside a struct/union, relative to that struct/union.
#[derive(Debug, Clone, Copy)]
struct Found {
    /// Bit offset from the start of the containing struct/union.
    bit_offset: u64,
    /// Type id of the member.
    type_id: u32,
    /// Bitfield size from the kind_flag encoding (0 = not a bitfield).
    bitfield_size: u32,
    /// Whether the direct container used the kind_flag encoding.
    kind_flag: bool,
}

impl TypeTable {
    /// Byte offset of dotted `member_path` in the first `struct struct_name`
    /// that has it. See [`super::Btf::member_offset`].
    pub(super) fn member_offset(
        &self,
        struct_name: &str,
        member_path: &str,
    ) -> Result<u32, BtfError> {
        let comps: Vec<&str> = member_path.split('.').collect();
        if comps.iter().any(|c| c.is_empty()) {
            return Err(BtfError::InvalidPath(member_path.to_owned()));
        }
        let mut first_err: Option<BtfError> = None;
        let mut seen_struct = false;
        for (id, rec) in self.types.iter().enumerate() {
            if rec.kind != Kind::Struct || self.name(rec.name_off)? != struct_name.as_bytes() {
                continue;
            }
            seen_struct = true;
            let id = u32::try_from(id).map_err(|_| BtfError::BadTypeId { id: u32::MAX })?;
            match self.resolve(id, struct_name, &comps) {
                Ok(off) => return Ok(off),
                // Prefer a specific error (bitfield, not a struct, ...) from
                // any duplicate over a plain "no such member".
                Err(e) => {
                    let replace = match &first_err {
                        None => true,
                        Some(BtfError::MemberNotFound { .. }) => {
                            !matches!(e, BtfError::MemberNotFound { .. })
                        }
                        Some(_) => false,
                    };
                    if replace {
                        first_err = Some(e);
                    }
                }
            }
        }
        if !seen_struct {
            return Err(BtfError::StructNotFound(struct_name.to_owned()));
        }
        Err(first_err.unwrap_or_else(|| BtfError::StructNotFound(struct_name.to_owned())))
    }

    /// `sizeof(struct name)` of the first STRUCT with that name, if any.
    #[cfg(test)]
    pub(super) fn struct_size(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .filter(|t| t.kind == Kind::Struct)
            .find(|t| self.name(t.name_off).is_ok_and(|n| n == name.as_bytes()))
            .map(|t| t.size_or_type)
    }

    /// Resolves `comps` starting at struct `root`; returns the byte offset.
    fn resolve(&self, root: u32, strukt: &str, comps: &[&str]) -> Result<u32, BtfError> {
        let mut cur = root;
        let mut bits: u64 = 0;
        for (i, comp) in comps.iter().enumerate() {
            let prefix = || comps.get(..i).unwrap_or_default().join(".");
            let upto = || comps.get(..=i).unwrap_or_default().join(".");
            let container = self.skip_modifiers(cur)?;
            let kind = self.get(container)?.kind;
            if !matches!(kind, Kind::Struct | Kind::Union) {
                return Err(BtfError::NotAStruct {
                    strukt: strukt.to_owned(),
                    path: prefix(),
                    kind: kind.name(),
                });
            }
            let found = self
                .find_member(container, comp.as_bytes(), 0)?
                .ok_or_else(|| BtfError::MemberNotFound {
                    strukt: strukt.to_owned(),
                    member: upto(),
                })?;
            bits = bits.saturating_add(found.bit_offset);
            let int_bits = if found.kind_flag {
                0
            } else {
                self.int_bitfield_bits(found.type_id)?
            };
            let bit_size = found.bitfield_size.max(int_bits);
            if bit_size != 0 || !bits.is_multiple_of(8) {
                return Err(BtfError::Bitfield {
                    strukt: strukt.to_owned(),
                    member: upto(),
                    bit_offset: bits,
                    bit_size,
                });
            }
            cur = found.type_id;
        }
        u32::try_from(bits / 8).map_err(|_| BtfError::OffsetOverflow {
            strukt: strukt.to_owned(),
            member: comps.join("."),
        })
    }

    /// Follows TYPEDEF/CONST/VOLATILE/RESTRICT/TYPE_TAG to the underlying type.
    fn skip_modifiers(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            let rec = self.get(id)?;
            match rec.kind {
                Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                    id = rec.size_or_type;
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::TooDeep { id })
    }

    /// For the legacy (kind_flag = 0) encoding: a member whose INT type covers
    /// fewer bits than its size, or starts at a bit offset, is a bitfield.
    /// Returns the bitfield width, or 0 if the member is not such a bitfield.
    fn int_bitfield_bits(&self, type_id: u32) -> Result<u32, BtfError> {
        let rec = self.get(self.skip_modifiers(type_id)?)?;
        if rec.kind != Kind::Int {
            return Ok(0);
        }
        let nr_bits = rec.int_encoding & 0xff;
        let bit_off = (rec.int_encoding >> 16) & 0xff;
        let full = u64::from(rec.size_or_type) * 8;
        if bit_off != 0 || u64::from(nr_bits) != full {
            Ok(nr_bits)
        } else {
            Ok(0)
        }
    }

    /// Finds `name` among the members of struct/union `container`, looking
    /// through anonymous struct/union members (in declaration order).
    fn find_member(
        &self,
        container: u32,
        name: &[u8],
        depth: u32,
    ) -> Result<Option<Found>, BtfError> {
        if depth >= MAX_DEPTH {
            return Err(BtfError::TooDeep { id: container });
        }
        let rec = self.get(container)?;
        for m in self.members_of(rec) {
            let (bit_offset, bitfield_size) = if rec.kind_flag {
                (u64::from(m.offset & 0x00ff_ffff), m.offset >> 24)
            } else {
                (u64::from(m.offset), 0)
            };
            if m.name_off == 0 {
                let inner = self.skip_modifiers(m.type_id)?;
                if !matches!(self.get(inner)?.kind, Kind::Struct | Kind::Union) {
                    continue; // e.g. unnamed padding bitfield
                }
                if let Some(hit) = self.find_member(inner, name, depth + 1)? {
                    return Ok(Some(Found {
                        bit_offset: bit_offset.saturating_add(hit.bit_offset),
                        ..hit
                    }));
                }
            } else if self.name(m.name_off)? == name {
                return Ok(Some(Found {
                    bit_offset,
                    type_id: m.type_id,
                    bitfield_size,
                    kind_flag: rec.kind_flag,
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::BtfError;
    use super::super::tests::{Builder, FWD, KF, STRUCT, TYPEDEF, UNION, check, parse};

    #[test]
    fn kind_flag_offsets_and_bitfields() -> Result<(), BtfError> {
        let mut b = Builder::new();
        let int = b.int("int", 4, 32);
        let uint3 = b.int("u3", 4, 3);
        let shifted = b.int("shifted", 4, 8 << 16 | 8); // INT starting at bit 8
        let m = [
            ("a", int, 0),
            ("flags3", int, 3 << 24 | 32),
            ("flags5", int, 5 << 24 | 35),
            ("aligned_bf", int, 8 << 24 | 64),
            ("b", int, 96),
        ];
        b.comp(STRUCT | KF, "kf", 16, &m);
        // Legacy encoding: bitfield width lives in the INT type; unaligned offsets.
        let m = [("a", int, 0), ("bits", uint3, 32), ("odd", int, 41)];
        b.st("legacy", 12, &[m[0], m[1], m[2], ("c", int, 64)]);
        b.st("legacy2", 16, &[("sh", shifted, 96), ("", int, 97)]);
        check(
            &parse(&b)?,
            &[
                ("kf.a", "0"),
                ("kf.b", "12"),
                ("legacy.c", "8"),
                (
                    "kf.flags3",
                    "member flags3 is a bitfield (bit offset 32, 3 bits)",
                ),
                (
                    "kf.flags5",
                    "member flags5 is a bitfield (bit offset 35, 5 bits)",
                ),
                ("kf.aligned_bf", "is a bitfield (bit offset 64, 8 bits)"),
                (
                    "legacy.bits",
                    "member bits is a bitfield (bit offset 32, 3 bits)",
                ),
                (
                    "legacy.odd",
                    "member odd is a bitfield (bit offset 41, 0 bits)",
                ),
                (
                    "legacy2.sh",
                    "member sh is a bitfield (bit offset 96, 8 bits)",
                ),
            ],
        );
        Ok(())
    }

    #[test]
    fn duplicates_fwd_and_first_struct_with_member() -> Result<(), BtfError> {
        let mut b = Builder::new();
        let int = b.int("int", 4, 32);
        b.ty("dup", FWD, 0, 0);
        b.comp(UNION, "dup", 4, &[("x", int, 0)]);
        b.st("dup", 4, &[("y", int, 0)]);
        b.st("dup", 8, &[("y", int, 0), ("x", int, 32)]);
        b.st("dup", 12, &[("z", int, 0), ("x", int, 64)]);
        b.ty("only_fwd", FWD, 0, 0);
        check(
            &parse(&b)?,
            &[
                ("dup.x", "4"),
                ("dup.y", "0"),
                ("dup.z", "0"),
                ("dup.w", "struct dup has no member w"),
                ("only_fwd.x", "struct only_fwd not found"),
            ],
        );
        Ok(())
    }

    #[test]
    fn bad_type_ids_and_cycles_are_errors() -> Result<(), BtfError> {
        let mut b = Builder::new();
        let int = b.int("int", 4, 32);
        let td = b.ty("loop", TYPEDEF, 0, 3); // id 2 -> 3 -> 2
        b.ty("loop2", TYPEDEF, 0, td);
        b.st("s", 16, &[("a", int, 0), ("bad", 999, 32), ("cyc", td, 64)]);
        check(
            &parse(&b)?,
            &[
                ("s.a", "0"),
                ("s.bad.x", "nonexistent type id 999"),
                ("s.cyc.x", "too deep or cyclic"),
            ],
        );
        Ok(())
    }
}
