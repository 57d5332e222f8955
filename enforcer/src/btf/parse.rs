//! BTF wire format: header validation, the type section walk and the string
//! section, decoded into an in-memory [`TypeTable`].
//!
//! Layout follows the kernel's `Documentation/bpf/btf.rst`. Every read is
//! length-checked; malformed input yields a [`BtfError`], never a panic.

use super::BtfError;

/// `btf_header.magic` as read little-endian.
pub(super) const BTF_MAGIC: u16 = 0xEB9F;
/// The only `btf_header.version` defined so far.
pub(super) const BTF_VERSION: u8 = 1;
/// Size of the fixed part of `struct btf_header` (magic .. str_len).
pub(super) const HEADER_LEN: usize = 24;
/// Size of the common `struct btf_type` record (name_off, info, size/type).
const TYPE_HEADER_LEN: usize = 12;

/// A BTF type kind (`BTF_INFO_KIND(info)`), plus `Void` for type id 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Void,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl Kind {
    /// Decodes a raw kind number; `None` for 0 (UNKN) and kinds newer than ENUM64.
    fn from_raw(raw: u32) -> Option<Kind> {
        Some(match raw {
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// Human-readable kind name, as used in error messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Void => "VOID",
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::Datasec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
        }
    }

    /// Size of the kind-specific data that follows the common record, and
    /// the size of one element of it when that data is a `vlen`-long array
    /// whose first word is a name offset (members, enumerators, params).
    fn trailing(self, vlen: usize) -> (usize, Option<usize>) {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => (4, None),
            Kind::Array => (12, None),
            Kind::Struct | Kind::Union | Kind::Enum64 => (12 * vlen, Some(12)),
            Kind::Enum | Kind::FuncProto => (8 * vlen, Some(8)),
            // btf_var_secinfo starts with a type id, not a name.
            Kind::Datasec => (12 * vlen, None),
            _ => (0, None),
        }
    }
}

/// One decoded type record. Index in [`TypeTable::types`] is the type id.
#[derive(Debug, Clone, Copy)]
pub(super) struct TypeRec {
    /// Offset of the name in the string section (0 = anonymous).
    pub(super) name_off: u32,
    /// Kind of the type.
    pub(super) kind: Kind,
    /// `kind_flag` bit of `info` (for STRUCT/UNION: bitfield offset encoding).
    pub(super) kind_flag: bool,
    /// `size` or `type` word, depending on the kind.
    pub(super) size_or_type: u32,
    /// For INT: the encoding word (bits 0-7 bit count, 16-23 bit offset).
    pub(super) int_encoding: u32,
    /// For STRUCT/UNION: first index into [`TypeTable::members`]; for ENUM/ENUM64: into
    /// [`TypeTable::enumerators`].
    members_start: usize,
    /// For STRUCT/UNION: number of members; for ENUM/ENUM64: number of enumerators.
    members_len: usize,
}

impl TypeRec {
    /// This record's `members_start..members_start + members_len` of `all` (empty when out of
    /// bounds).
    fn span_of<'t, T>(&self, all: &'t [T]) -> &'t [T] {
        self.members_start
            .checked_add(self.members_len)
            .and_then(|end| all.get(self.members_start..end))
            .unwrap_or(&[])
    }
}

/// One `struct btf_enum` or `struct btf_enum64`, its value widened to 64 bits (signed when
/// the enum's `kind_flag` says so).
#[derive(Debug, Clone, Copy)]
pub(super) struct EnumeratorRec {
    /// Offset of the enumerator's name.
    pub(super) name_off: u32,
    /// Its value.
    pub(super) value: i64,
}

/// One `struct btf_member`.
#[derive(Debug, Clone, Copy)]
pub(super) struct MemberRec {
    /// Offset of the member name (0 = anonymous member).
    pub(super) name_off: u32,
    /// Type id of the member.
    pub(super) type_id: u32,
    /// Raw offset word (bit offset, or bitfield size << 24 | bit offset).
    pub(super) offset: u32,
}

/// All types and strings of one BTF blob.
#[derive(Debug)]
pub(super) struct TypeTable {
    /// Indexed by type id; entry 0 is the implicit `void`.
    pub(super) types: Vec<TypeRec>,
    members: Vec<MemberRec>,
    enumerators: Vec<EnumeratorRec>,
    strings: Vec<u8>,
}

/// Bounds-checked little-endian cursor.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BtfError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(BtfError::Truncated { what })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(BtfError::Truncated { what })?;
        self.pos = end;
        Ok(out)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

fn read_u32(buf: &[u8], at: usize, what: &'static str) -> Result<u32, BtfError> {
    let end = at.checked_add(4).ok_or(BtfError::Truncated { what })?;
    let bytes: [u8; 4] = buf
        .get(at..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(BtfError::Truncated { what })?;
    Ok(u32::from_le_bytes(bytes))
}

/// Returns the `[start, start+len)` byte range of a section, checked to lie in `bytes`.
fn section<'a>(
    bytes: &'a [u8],
    hdr_len: usize,
    off: u32,
    len: u32,
    what: &'static str,
) -> Result<&'a [u8], BtfError> {
    let start = usize::try_from(off)
        .ok()
        .and_then(|o| hdr_len.checked_add(o))
        .ok_or(BtfError::Truncated { what })?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .ok_or(BtfError::Truncated { what })?;
    bytes.get(start..end).ok_or(BtfError::Truncated { what })
}

impl TypeTable {
    /// Parses a complete BTF blob (header, type section, string section).
    pub(super) fn parse(bytes: &[u8]) -> Result<TypeTable, BtfError> {
        let what = "header";
        let head = bytes
            .get(..HEADER_LEN)
            .ok_or(BtfError::Truncated { what })?;
        let magic = head
            .get(..2)
            .and_then(|s| s.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or(BtfError::Truncated { what })?;
        if magic != BTF_MAGIC {
            return Err(BtfError::BadMagic { found: magic });
        }
        let version = head.get(2).copied().ok_or(BtfError::Truncated { what })?;
        if version != BTF_VERSION {
            return Err(BtfError::UnsupportedVersion { version });
        }
        let hdr_len =
            usize::try_from(read_u32(head, 4, what)?).map_err(|_| BtfError::Truncated { what })?;
        if hdr_len < HEADER_LEN {
            return Err(BtfError::BadHeader {
                reason: "hdr_len smaller than the 24-byte btf_header",
            });
        }
        if hdr_len > bytes.len() {
            return Err(BtfError::Truncated { what });
        }
        let type_sec = section(
            bytes,
            hdr_len,
            read_u32(head, 8, what)?,
            read_u32(head, 12, what)?,
            "type section",
        )?;
        let str_sec = section(
            bytes,
            hdr_len,
            read_u32(head, 16, what)?,
            read_u32(head, 20, what)?,
            "string section",
        )?;
        if str_sec.first() != Some(&0) || str_sec.last() != Some(&0) {
            return Err(BtfError::BadHeader {
                reason: "string section must start and end with a NUL byte",
            });
        }
        let mut table = TypeTable {
            types: Vec::with_capacity(type_sec.len() / 32),
            members: Vec::new(),
            enumerators: Vec::new(),
            strings: str_sec.to_vec(),
        };
        table.types.push(TypeRec {
            name_off: 0,
            kind: Kind::Void,
            kind_flag: false,
            size_or_type: 0,
            int_encoding: 0,
            members_start: 0,
            members_len: 0,
        });
        table.read_types(type_sec)?;
        Ok(table)
    }

    /// Walks the type section, assigning ids 1, 2, ... in order.
    fn read_types(&mut self, type_sec: &[u8]) -> Result<(), BtfError> {
        let what = "type record";
        let mut rd = Reader {
            buf: type_sec,
            pos: 0,
        };
        while !rd.at_end() {
            let id = u32::try_from(self.types.len()).map_err(|_| BtfError::BadHeader {
                reason: "too many types",
            })?;
            let common = rd.take(TYPE_HEADER_LEN, what)?;
            let name_off = read_u32(common, 0, what)?;
            let info = read_u32(common, 4, what)?;
            let size_or_type = read_u32(common, 8, what)?;
            let raw_kind = (info >> 24) & 0x1f;
            let kind = Kind::from_raw(raw_kind).ok_or(BtfError::BadKind { id, kind: raw_kind })?;
            self.check_str(name_off)?;
            let vlen = (info & 0xffff) as usize;
            let (len, elem) = kind.trailing(vlen);
            let extra = rd.take(len, what)?;
            if let Some(elem) = elem {
                // Validate the name offset that starts every element.
                for chunk in extra.chunks_exact(elem) {
                    self.check_str(read_u32(chunk, 0, what)?)?;
                }
            }
            let mut rec = TypeRec {
                name_off,
                kind,
                kind_flag: info >> 31 == 1,
                size_or_type,
                int_encoding: 0,
                members_start: 0,
                members_len: 0,
            };
            match kind {
                Kind::Int => rec.int_encoding = read_u32(extra, 0, what)?,
                Kind::Struct | Kind::Union => {
                    rec.members_start = self.members.len();
                    rec.members_len = vlen;
                    for chunk in extra.chunks_exact(12) {
                        self.members.push(MemberRec {
                            name_off: read_u32(chunk, 0, what)?,
                            type_id: read_u32(chunk, 4, what)?,
                            offset: read_u32(chunk, 8, what)?,
                        });
                    }
                }
                Kind::Enum | Kind::Enum64 => {
                    rec.members_start = self.enumerators.len();
                    rec.members_len = vlen;
                    let signed = rec.kind_flag;
                    for chunk in extra.chunks_exact(elem.unwrap_or(8)) {
                        let low = read_u32(chunk, 4, what)?;
                        let value = if kind == Kind::Enum64 {
                            let high = read_u32(chunk, 8, what)?;
                            // Two's complement reinterpretation, as the kernel stores it.
                            (u64::from(high) << 32 | u64::from(low)) as i64
                        } else if signed {
                            i64::from(low as i32)
                        } else {
                            i64::from(low)
                        };
                        self.enumerators.push(EnumeratorRec {
                            name_off: read_u32(chunk, 0, what)?,
                            value,
                        });
                    }
                }
                _ => {}
            }
            self.types.push(rec);
        }
        Ok(())
    }

    fn check_str(&self, offset: u32) -> Result<(), BtfError> {
        let ok = usize::try_from(offset).is_ok_and(|o| o < self.strings.len());
        if ok {
            Ok(())
        } else {
            Err(BtfError::BadStringOffset {
                offset,
                len: self.strings.len(),
            })
        }
    }

    /// Number of types, including the implicit `void` (id 0).
    pub(super) fn len(&self) -> usize {
        self.types.len()
    }

    /// Looks up a type by id.
    pub(super) fn get(&self, id: u32) -> Result<&TypeRec, BtfError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.types.get(i))
            .ok_or(BtfError::BadTypeId { id })
    }

    /// The NUL-terminated string at `offset` (without the NUL).
    pub(super) fn name(&self, offset: u32) -> Result<&[u8], BtfError> {
        let tail = usize::try_from(offset)
            .ok()
            .and_then(|o| self.strings.get(o..))
            .ok_or(BtfError::BadStringOffset {
                offset,
                len: self.strings.len(),
            })?;
        Ok(tail.split(|&b| b == 0).next().unwrap_or(&[]))
    }

    /// Enumerators of an ENUM/ENUM64 record (empty for other kinds).
    pub(super) fn enumerators_of(&self, rec: &TypeRec) -> &[EnumeratorRec] {
        if matches!(rec.kind, Kind::Enum | Kind::Enum64) {
            rec.span_of(&self.enumerators)
        } else {
            &[]
        }
    }

    /// Members of a STRUCT/UNION record (empty for other kinds).
    pub(super) fn members_of(&self, rec: &TypeRec) -> &[MemberRec] {
        if matches!(rec.kind, Kind::Struct | Kind::Union) {
            rec.span_of(&self.members)
        } else {
            &[]
        }
    }
}
