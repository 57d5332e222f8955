//! Unit tests on synthetic BTF blobs, and the tiny BTF [`Builder`] that the
//! member-resolution tests in `members.rs` share.

use super::*;

pub(super) const INT: u32 = 1;
pub(super) const PTR: u32 = 2;
pub(super) const ARRAY: u32 = 3;
pub(super) const STRUCT: u32 = 4;
pub(super) const UNION: u32 = 5;
pub(super) const ENUM: u32 = 6;
pub(super) const FWD: u32 = 7;
pub(super) const TYPEDEF: u32 = 8;
pub(super) const VOLATILE: u32 = 9;
pub(super) const CONST: u32 = 10;
pub(super) const RESTRICT: u32 = 11;
pub(super) const FUNC: u32 = 12;
pub(super) const FUNC_PROTO: u32 = 13;
pub(super) const VAR: u32 = 14;
pub(super) const DATASEC: u32 = 15;
pub(super) const FLOAT: u32 = 16;
pub(super) const DECL_TAG: u32 = 17;
pub(super) const TYPE_TAG: u32 = 18;
pub(super) const ENUM64: u32 = 19;

/// OR into a kind to set `kind_flag` (bit 31 of `info` once shifted by 24).
pub(super) const KF: u32 = 0x80;

/// Tiny BTF writer: types get ids 1, 2, ... in the order they are added.
pub(super) struct Builder {
    pub(super) types: Vec<u8>,
    pub(super) strings: Vec<u8>,
    next_id: u32,
}

impl Builder {
    pub(super) fn new() -> Self {
        let (types, strings) = (Vec::new(), vec![0]);
        Builder {
            types,
            strings,
            next_id: 1,
        }
    }

    pub(super) fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    pub(super) fn w(&mut self, words: &[u32]) {
        self.types
            .extend(words.iter().flat_map(|v| v.to_le_bytes()));
    }

    /// Writes the common record; the caller appends kind-specific data.
    pub(super) fn raw(&mut self, name_off: u32, kind: u32, vlen: u32, size_or_type: u32) -> u32 {
        self.w(&[name_off, kind << 24 | vlen, size_or_type]);
        self.next_id += 1;
        self.next_id - 1
    }

    pub(super) fn ty(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32) -> u32 {
        let n = self.s(name);
        self.raw(n, kind, vlen, size_or_type)
    }

    pub(super) fn int(&mut self, name: &str, size: u32, bits: u32) -> u32 {
        let id = self.ty(name, INT, 0, size);
        self.w(&[bits]);
        id
    }

    /// STRUCT/UNION with members `(name, type, raw offset word)`.
    pub(super) fn comp(&mut self, kind: u32, name: &str, size: u32, m: &[(&str, u32, u32)]) -> u32 {
        let id = self.ty(name, kind, u32::try_from(m.len()).unwrap_or(0), size);
        for &(mname, ty, off) in m {
            let n = self.s(mname);
            self.types
                .extend([n, ty, off].iter().flat_map(|v| v.to_le_bytes()));
        }
        id
    }

    pub(super) fn st(&mut self, name: &str, size: u32, m: &[(&str, u32, u32)]) -> u32 {
        self.comp(STRUCT, name, size, m)
    }

    pub(super) fn build(&self) -> Vec<u8> {
        let tl = u32::try_from(self.types.len()).unwrap_or(0);
        let sl = u32::try_from(self.strings.len()).unwrap_or(0);
        let mut out = vec![0x9f, 0xeb, 1, 0];
        out.extend([24, 0, tl, tl, sl].iter().flat_map(|v| v.to_le_bytes()));
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

pub(super) fn parse(b: &Builder) -> Result<Btf, BtfError> {
    Btf::parse(&b.build())
}

/// Checks `("struct.member.path", want)` cases: `want` is either the expected
/// decimal offset or a fragment of the expected error message.
#[track_caller]
pub(super) fn check(btf: &Btf, cases: &[(&str, &str)]) {
    for &(path, want) in cases {
        let (s, m) = path.split_once('.').unwrap_or((path, ""));
        match btf.member_offset(s, m) {
            Ok(o) => assert_eq!(o.to_string(), want, "{path}"),
            Err(e) => assert!(e.to_string().contains(want), "{path}: {e:?} lacks {want:?}"),
        }
    }
}

/// Asserts that `r` failed with a message containing `want`.
#[track_caller]
pub(super) fn fails<T: std::fmt::Debug>(r: Result<T, BtfError>, want: &str) {
    let (is_err, msg) = match r {
        Ok(v) => (false, format!("Ok({v:?})")),
        Err(e) => (true, e.to_string()),
    };
    assert!(
        is_err && msg.contains(want),
        "{msg:?} is not an error containing {want:?}"
    );
}

/// struct inner { int x; long y; }; struct outer { int pad; struct inner in; int *p; }
pub(super) fn nested() -> Builder {
    let mut b = Builder::new();
    let int = b.int("int", 4, 32);
    let long = b.int("long", 8, 64);
    let inner = b.st("inner", 16, &[("x", int, 0), ("y", long, 64)]);
    let ptr = b.ty("", PTR, 0, int);
    b.st(
        "outer",
        32,
        &[("pad", int, 0), ("in", inner, 64), ("p", ptr, 192)],
    );
    b
}

#[test]
fn plain_nested_and_missing_members() -> Result<(), BtfError> {
    let btf = parse(&nested())?;
    assert_eq!(btf.type_count(), 6);
    check(
        &btf,
        &[
            ("inner.x", "0"),
            ("inner.y", "8"),
            ("outer.pad", "0"),
            ("outer.in", "8"),
            ("outer.in.y", "16"),
            ("outer.p", "24"),
            ("nope.x", "struct nope not found"),
            ("int.x", "struct int not found"), // exists, but is not a struct
            ("outer.zz", "struct outer has no member zz"),
            ("outer.in.zz", "struct outer has no member in.zz"),
            ("outer.p.x", r#""p" is a PTR, not an embedded"#), // pointers are not followed
            ("outer.pad.x", r#""pad" is a INT"#),
            ("outer", "invalid member path \"\""),
            ("outer..", "invalid member path"),
            ("outer.in.", "invalid member path"),
            ("outer..in", "invalid member path"),
            ("outer.in..y", "invalid member path"),
        ],
    );
    assert!(matches!(
        btf.member_offset("nope", "x"),
        Err(BtfError::StructNotFound(_))
    ));
    Ok(())
}

/// Models `struct qstr { union { struct { u32 hash; u32 len; }; u64 hash_len; }; const char *name; }`
/// and `struct mm_struct { struct { long mmap_base, arg_start, arg_end; }; long flags; }`.
#[test]
fn anonymous_union_and_struct() -> Result<(), BtfError> {
    let mut b = Builder::new();
    let u32t = b.int("u32", 4, 32);
    let u64t = b.int("u64", 8, 64);
    let chr = b.int("char", 1, 8);
    let cchr = b.ty("", CONST, 0, chr);
    let name = b.ty("", PTR, 0, cchr);
    let hl = b.st("", 8, &[("hash", u32t, 0), ("len", u32t, 32)]);
    let un = b.comp(UNION, "", 8, &[("", hl, 0), ("hash_len", u64t, 0)]);
    let qstr = b.st("qstr", 16, &[("", un, 0), ("name", name, 64)]);
    let m = [("mmap_base", u64t, 0), ("arg_start", u64t, 64)];
    let inner = b.st("", 24, &[m[0], m[1], ("arg_end", u64t, 128)]);
    b.st("mm_struct", 32, &[("", inner, 0), ("flags", u64t, 192)]);
    b.st("dentry", 40, &[("d_flags", u32t, 0), ("d_name", qstr, 64)]);
    check(
        &parse(&b)?,
        &[
            ("qstr.hash", "0"),
            ("qstr.len", "4"),
            ("qstr.hash_len", "0"),
            ("qstr.name", "8"),
            ("mm_struct.arg_start", "8"),
            ("mm_struct.arg_end", "16"),
            ("mm_struct.flags", "24"),
            ("dentry.d_name.len", "12"),
            ("dentry.d_name.name", "16"),
        ],
    );
    Ok(())
}

#[test]
fn typedef_and_modifiers_are_skipped() -> Result<(), BtfError> {
    let mut b = Builder::new();
    let int = b.int("int", 4, 32);
    let path = b.st("path", 16, &[("mnt", int, 0), ("dentry", int, 64)]);
    let td = b.ty("path_t", TYPEDEF, 0, path);
    let tag = b.ty("user", TYPE_TAG, 0, td);
    let vol = b.ty("", VOLATILE, 0, tag);
    let cst = b.ty("", CONST, 0, vol);
    let rst = b.ty("", RESTRICT, 0, cst);
    let file = b.st("file", 48, &[("f_mode", int, 0), ("f_path", rst, 128)]);
    let file_t = b.ty("file_t", TYPEDEF, 0, file);
    b.st("holder", 64, &[("x", int, 0), ("f", file_t, 64)]);
    check(
        &parse(&b)?,
        &[
            ("file.f_path", "16"),
            ("file.f_path.dentry", "24"),
            ("holder.f.f_path.dentry", "32"),
            ("path_t.mnt", "struct path_t not found"),
        ],
    );
    Ok(())
}

/// One record of every kind 1..=19 (with non-zero vlen where it has a
/// meaning) precedes the target struct; any mis-sized kind would desync it.
#[test]
fn every_kind_is_skipped_correctly() -> Result<(), BtfError> {
    let mut b = Builder::new();
    let int = b.int("int", 4, 32);
    b.ty("", PTR, 0, int);
    b.ty("", ARRAY, 0, 0);
    b.w(&[int, int, 16]);
    b.st("other", 8, &[("p", int, 0), ("q", int, 32)]);
    b.comp(UNION | KF, "u", 4, &[("p", int, 0), ("q", int, 0)]);
    let e = b.ty("e", ENUM, 2, 4);
    let (a, z) = (b.s("E_A"), b.s("E_B"));
    b.w(&[a, 1, z, u32::MAX]);
    b.ty("fwd_u", FWD | KF, 0, 0);
    b.ty("td", TYPEDEF, 0, int);
    b.ty("", VOLATILE, 0, int);
    b.ty("", CONST, 0, int);
    b.ty("", RESTRICT, 0, int);
    let proto = b.ty("", FUNC_PROTO, 3, int);
    let (a, z) = (b.s("a"), b.s("b"));
    b.w(&[a, int, z, e, 0, 0]); // last param: varargs
    b.ty("fn", FUNC, 1, proto); // vlen = linkage
    let var = b.ty("v", VAR, 0, int);
    b.w(&[1]); // linkage
    b.ty(".data", DATASEC, 2, 8);
    b.w(&[var, 0, 4, var, 4, 4]);
    b.ty("double", FLOAT, 0, 8);
    b.ty("tag", DECL_TAG, 0, var);
    b.w(&[u32::MAX]); // component_idx = -1
    b.ty("rcu", TYPE_TAG, 0, int);
    b.ty("e64", ENUM64 | KF, 2, 8);
    let (a, z) = (b.s("E64_A"), b.s("E64_B"));
    b.w(&[a, 0xdead_beef, 1, z, 0, u32::MAX]);
    b.st("target", 24, &[("first", int, 0), ("last", int, 160)]);
    let btf = parse(&b)?;
    assert_eq!(btf.type_count(), 21);
    check(&btf, &[("target.last", "20"), ("other.q", "4")]);
    Ok(())
}

#[test]
fn unknown_kind_is_an_error() {
    for kind in [0, 20, 31] {
        let mut b = Builder::new();
        b.int("int", 4, 32);
        b.ty("x", kind, 0, 0);
        let want = format!("BTF type id 2 has unknown kind {kind}");
        fails(Btf::parse(&b.build()), &want);
    }
}

#[test]
fn truncated_input_never_panics() {
    let full = nested().build();
    assert!(Btf::parse(&full).is_ok());
    for len in 0..full.len() {
        let cut = full.get(..len).unwrap_or_default();
        assert!(Btf::parse(cut).is_err(), "prefix of {len} bytes parsed");
    }
    fails(Btf::parse(&[0x9f, 0xeb, 1]), "truncated in header");
    // Type section length not a whole record.
    let mut b = nested();
    b.types.pop();
    fails(Btf::parse(&b.build()), "truncated in type record");
    // Sections or hdr_len beyond the buffer, including offset overflow.
    for (at, v, want) in [
        (20, u32::MAX, "truncated in string section"),
        (16, u32::MAX, "truncated in string section"),
        (12, 4096, "truncated in type section"),
        (4, 1000, "truncated in header"),
    ] {
        let mut blob = nested().build();
        blob.splice(at..at + 4, u32::to_le_bytes(v));
        fails(Btf::parse(&blob), want);
    }
}

#[test]
fn header_validation() {
    let good = nested().build();
    let patch = |at: usize, bytes: &[u8]| {
        let mut blob = good.clone();
        blob.splice(at..at + bytes.len(), bytes.iter().copied());
        Btf::parse(&blob)
    };
    fails(patch(0, &[0xeb, 0x9f]), "bad BTF magic 0x9feb"); // big-endian BTF
    fails(Btf::parse(&[0u8; 64]), "bad BTF magic 0x0000");
    fails(patch(2, &[2]), "unsupported BTF version 2");
    fails(patch(4, &16u32.to_le_bytes()), "hdr_len smaller");
    let nul = "string section must start and end with a NUL";
    let last = good.len() - 1;
    fails(patch(last, b"x"), nul);
    fails(patch(last + 1 - nested().strings.len(), b"x"), nul);
}

#[test]
fn string_offset_out_of_bounds() {
    let mut b = nested();
    let len = b.strings.len();
    b.raw(9999, STRUCT, 0, 0);
    let want = format!("string offset 9999 outside string section of {len} bytes");
    fails(Btf::parse(&b.build()), &want);
    // A member name offset equal to the section length is already outside.
    let mut b = nested();
    let at = u32::try_from(b.strings.len()).unwrap_or(0);
    b.raw(0, STRUCT, 1, 4);
    b.w(&[at, 1, 0]);
    let want = format!("string offset {at} outside");
    fails(Btf::parse(&b.build()), &want);
}

#[test]
fn from_file_errors_and_roundtrip() {
    let missing = Btf::from_file(Path::new("/nonexistent/vmlinux"));
    fails(missing, "reading BTF from /nonexistent");
    let tmp = std::env::temp_dir().join(format!("btf-unit-{}.bin", std::process::id()));
    let written = std::fs::write(&tmp, nested().build());
    assert!(written.is_ok());
    let res = Btf::from_file(&tmp).and_then(|b| b.member_offset("outer", "in.y"));
    let _ = std::fs::remove_file(&tmp);
    assert!(matches!(res, Ok(16)));
}
