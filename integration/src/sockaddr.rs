//! Socket addresses in the C layout the system calls take (`sockaddr_in`, `sockaddr_in6`), for
//! the fixtures that make their socket calls themselves (`dns-client`, `io-uring-client`).

use std::net::SocketAddr;

/// A socket address in the C layout the system calls take.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // libc's sockaddr types have no Debug.
pub enum SockAddr {
    /// IPv4.
    V4(libc::sockaddr_in),
    /// IPv6.
    V6(libc::sockaddr_in6),
}

#[allow(clippy::len_without_is_empty)]
impl SockAddr {
    /// `addr` in the C layout.
    pub fn new(addr: SocketAddr) -> SockAddr {
        match addr {
            SocketAddr::V4(v4) => SockAddr::V4(libc::sockaddr_in {
                sin_family: family(libc::AF_INET),
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(v6) => SockAddr::V6(libc::sockaddr_in6 {
                sin6_family: family(libc::AF_INET6),
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            }),
        }
    }

    /// The address as the system calls take it.
    pub fn as_ptr(&self) -> *const libc::sockaddr {
        match self {
            SockAddr::V4(sa) => (&raw const *sa).cast(),
            SockAddr::V6(sa) => (&raw const *sa).cast(),
        }
    }

    /// Its length.
    pub fn len(&self) -> libc::socklen_t {
        let size = match self {
            SockAddr::V4(_) => std::mem::size_of::<libc::sockaddr_in>(),
            SockAddr::V6(_) => std::mem::size_of::<libc::sockaddr_in6>(),
        };
        libc::socklen_t::try_from(size).unwrap_or(libc::socklen_t::MAX)
    }
}

fn family(af: libc::c_int) -> libc::sa_family_t {
    libc::sa_family_t::try_from(af).unwrap_or_default()
}
