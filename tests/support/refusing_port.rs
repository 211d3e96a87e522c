//! Shared by the test suites of several crates (each includes this file
//! with `#[path]`): a port that refuses connections.

/// A TCP port on 127.0.0.1 that refuses connections for as long as the
/// returned socket lives: bound and never listening, so nothing else can
/// take the port meanwhile (a listener bound and closed would free it).
pub fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: a new descriptor, owned by nothing else.
    let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: all zeroes is a valid sockaddr_in (port 0: any).
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: bind(2) reads and getsockname(2) writes one sockaddr_in of
    // the size passed, on our socket.
    unsafe {
        let at = (&raw mut addr).cast::<libc::sockaddr>();
        assert_eq!(
            libc::bind(sock.as_raw_fd(), at, len),
            0,
            "bind: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::getsockname(sock.as_raw_fd(), at, &mut len), 0);
    }
    (sock, u16::from_be(addr.sin_port))
}
