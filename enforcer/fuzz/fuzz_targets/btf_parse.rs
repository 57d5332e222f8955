//! Fuzzes the BTF reader with arbitrary bytes: any blob must parse or be refused with an
//! error, and every query the loader makes of a parsed blob (member offsets through anonymous
//! members and modifiers, enumerator values) must answer or fail, without a panic or a hang.
#![no_main]

use enforcer::btf::Btf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::parse(data) else {
        return;
    };
    for (strukt, member) in [
        ("iov_iter", "ubuf"),
        ("msghdr", "msg_iter"),
        ("file", "f_path.dentry"),
        ("a", "b.c.d"),
    ] {
        let _ = btf.member_offset(strukt, member);
    }
    for (name, value) in [("iter_type", "ITER_UBUF"), ("a", "B")] {
        let _ = btf.enum_value(name, value);
    }
});
