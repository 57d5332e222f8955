//! Enumerator values over a parsed [`TypeTable`]: the kernel renumbers some enums between
//! versions (`enum iter_type`: `ITER_IOVEC` is 0 in 6.1 and 1 in 6.12), so the programs get
//! the running kernel's values, as they get its struct offsets.

use super::BtfError;
use super::parse::{Kind, TypeTable};

impl TypeTable {
    /// Value of `enumerator` in the first ENUM/ENUM64 named `enum_name` that has it.
    pub(super) fn enum_value(&self, enum_name: &str, enumerator: &str) -> Result<i64, BtfError> {
        let mut seen_enum = false;
        for rec in &self.types {
            if !matches!(rec.kind, Kind::Enum | Kind::Enum64)
                || self.name(rec.name_off)? != enum_name.as_bytes()
            {
                continue;
            }
            seen_enum = true;
            for e in self.enumerators_of(rec) {
                if self.name(e.name_off)? == enumerator.as_bytes() {
                    return Ok(e.value);
                }
            }
        }
        if seen_enum {
            Err(BtfError::EnumeratorNotFound {
                enum_name: enum_name.to_owned(),
                enumerator: enumerator.to_owned(),
            })
        } else {
            Err(BtfError::EnumNotFound(enum_name.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::BtfError;
    use super::super::tests::{Builder, ENUM, ENUM64, FWD, fails, parse};

    /// `enum iter_type` as 6.12 numbers it, a signed enum, and a 64-bit one.
    fn enums() -> Builder {
        let mut b = Builder::new();
        b.ty("iter_type", FWD, 0, 0);
        let names = [("ITER_UBUF", 0u32), ("ITER_IOVEC", 1), ("ITER_BVEC", 2)];
        b.ty("iter_type", ENUM, 3, 4);
        for (name, value) in names {
            let n = b.s(name);
            b.w(&[n, value]);
        }
        // kind_flag set: signed values.
        b.ty("signed_one", ENUM | super::super::tests::KF, 1, 4);
        let n = b.s("MINUS_TWO");
        b.w(&[n, (-2i32) as u32]);
        b.ty("wide", ENUM64, 1, 8);
        let n = b.s("BIG");
        b.w(&[n, 0x89ab_cdef, 0x0123_4567]);
        b
    }

    #[test]
    fn values_by_name_in_every_encoding() -> Result<(), BtfError> {
        let btf = parse(&enums())?;
        assert_eq!(btf.enum_value("iter_type", "ITER_UBUF").ok(), Some(0));
        assert_eq!(btf.enum_value("iter_type", "ITER_IOVEC").ok(), Some(1));
        assert_eq!(btf.enum_value("iter_type", "ITER_BVEC").ok(), Some(2));
        assert_eq!(btf.enum_value("signed_one", "MINUS_TWO").ok(), Some(-2));
        assert_eq!(
            btf.enum_value("wide", "BIG").ok(),
            Some(0x0123_4567_89ab_cdef)
        );
        Ok(())
    }

    #[test]
    fn missing_enums_and_enumerators_are_named() -> Result<(), BtfError> {
        let btf = parse(&enums())?;
        fails(
            btf.enum_value("iter_type", "ITER_PIPE"),
            "enum iter_type has no enumerator ITER_PIPE",
        );
        fails(btf.enum_value("nope", "X"), "enum nope not found");
        // A struct member lookup never sees enumerators, nor an enum lookup members.
        fails(
            btf.member_offset("iter_type", "ITER_UBUF"),
            "struct iter_type not found",
        );
        Ok(())
    }
}
