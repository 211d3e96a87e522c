//! A minimal rtnetlink client (rtnetlink(7), netlink(7)): the handful of
//! requests the in-process built-in network needs, each sent on a
//! `NETLINK_ROUTE` socket and acknowledged (`NLM_F_ACK`) before the next:
//!
//! - `RTM_NEWLINK` creating a bridge, or a veth pair whose peer is created
//!   directly in another network namespace (`IFLA_NET_NS_FD`), named, the
//!   host end up and attached to a bridge (`IFLA_MASTER`), one queue each
//!   way on both ends, in one message;
//! - `RTM_NEWLINK` on an existing link to bring it up, or to turn off its
//!   IPv6 address generation (`IFLA_AF_SPEC` / `IFLA_INET6_ADDR_GEN_MODE`
//!   = `IN6_ADDR_GEN_MODE_NONE`) while it has no carrier, so that it never
//!   makes a link-local address: no duplicate address detection,
//!   multicast listener reports or router solicitations on an IPv4-only
//!   network's veths; for a veth's host end, both and hairpin mode on its
//!   bridge port in one request;
//! - `RTM_DELLINK` by name;
//! - `RTM_NEWADDR` (IPv4) and `RTM_NEWROUTE` (IPv4, main table);
//! - a socket subscribed to link notifications (`RTMGRP_LINK`), on which
//!   [`LinkWatch`] waits for the kernel's `RTM_DELLINK` of given links; a
//!   classic BPF socket filter (socket(7) `SO_ATTACH_FILTER`) lets through
//!   only link deletions, then only those of the links waited for.
//!
//! A socket belongs to the network namespace of the thread that opened it,
//! so a socket opened inside [`crate::netns::run_in`] configures the
//! container's namespace.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_BRPORT_MODE: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
const IN6_ADDR_GEN_MODE_NONE: u8 = 1;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const VETH_INFO_PEER: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// Largest reply read (an acknowledgement echoes at most our request).
const RECV_BUFFER: usize = 16 * 1024;

/// `RTMGRP_LINK`: the multicast group of link notifications.
const RTMGRP_LINK: u32 = 1;
/// Receive buffer asked for a [`LinkWatch`]: a burst of launches sends
/// dozens of link notifications each; an overflow is survived (the links
/// are looked up again) but costs a lookup.
const WATCH_BUFFER: libc::c_int = 1 << 20;

/// One request being built: header, fixed part, attributes.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence, set on send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        Message { buf }
    }

    /// `struct ifinfomsg`: family, type, index, flags, change.
    fn ifinfo(&mut self, index: u32, flags: u32, change: u32) {
        ifinfo_into(&mut self.buf, index, flags, change);
    }

    fn bytes(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        attr_into(&mut self.buf, kind, payload);
    }

    /// Starts a nested attribute; [`Message::end`] closes it.
    fn begin(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        start
    }

    fn end(&mut self, start: usize) {
        let len = u16::try_from(self.buf.len() - start).expect("attributes stay small");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).expect("messages stay small");
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn ifinfo_into(buf: &mut Vec<u8>, index: u32, flags: u32, change: u32) {
    buf.push(libc::AF_UNSPEC as u8);
    buf.push(0);
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&index.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&change.to_ne_bytes());
}

fn attr_into(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).expect("attributes stay small");
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// An interface name as the kernel reads it (NUL-terminated).
/// One transmit and one receive queue on a veth end. Without them the
/// kernel gives a veth one queue per possible CPU and then cuts it down to
/// one after registering it (`veth_init_queues`), and that cut waits for
/// an expedited RCU grace period (`synchronize_net`) while holding the
/// global rtnl lock, once per end: on a few CPUs the longest rtnl hold of
/// a launch, which every other launch's netlink request queued behind.
fn one_queue_each_way(m: &mut Message) {
    m.attr(IFLA_NUM_TX_QUEUES, &1u32.to_ne_bytes());
    m.attr(IFLA_NUM_RX_QUEUES, &1u32.to_ne_bytes());
}

/// `IFLA_AF_SPEC` turning IPv6 address generation off
/// (`IN6_ADDR_GEN_MODE_NONE`).
fn no_ipv6_spec(m: &mut Message) {
    let spec = m.begin(IFLA_AF_SPEC);
    let inet6 = m.begin(libc::AF_INET6 as u16);
    m.attr(IFLA_INET6_ADDR_GEN_MODE, &[IN6_ADDR_GEN_MODE_NONE]);
    m.end(inet6);
    m.end(spec);
}

fn name_bytes(name: &str) -> Vec<u8> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// A `NETLINK_ROUTE` socket of the calling thread's network namespace.
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// Opens the socket.
    pub(crate) fn open() -> io::Result<Self> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Netlink { fd, seq: 0 })
    }

    /// Sends `message` and waits for its acknowledgement; the kernel's
    /// error (a negative errno in `NLMSG_ERROR`) becomes an `io::Error`.
    fn request(&mut self, message: Message) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = message.finish(seq);
        // SAFETY: sockaddr_nl is plain old data; all zeroes is valid.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `bytes` and `kernel` are valid for the lengths given for
        // the whole call.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&raw const kernel).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if let Some(result) = ack_of(&buf[..n as usize], seq) {
                return result;
            }
        }
    }

    /// Creates bridge `name` (`EEXIST` when it exists).
    pub(crate) fn create_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, libc::IFF_UP as u32, libc::IFF_UP as u32);
        m.attr(IFLA_IFNAME, &name_bytes(name));
        let info = m.begin(IFLA_LINKINFO);
        m.attr(IFLA_INFO_KIND, b"bridge");
        m.end(info);
        self.request(m)
    }

    /// Brings the link with `index` up.
    pub(crate) fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.ifinfo(index, libc::IFF_UP as u32, libc::IFF_UP as u32);
        self.request(m)
    }

    /// Turns off IPv6 address generation on the link called `name`
    /// (`IN6_ADDR_GEN_MODE_NONE`; do it while the link is down).
    pub(crate) fn no_ipv6_addresses(&mut self, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.ifinfo(0, 0, 0);
        m.attr(IFLA_IFNAME, &name_bytes(name));
        no_ipv6_spec(&mut m);
        match self.request(m) {
            // No IPv6 on the link (ipv6.disable=1, disable_ipv6): nothing
            // to turn off.
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => Ok(()),
            other => other,
        }
    }

    /// Brings the host end of a veth called `name` up with IPv6 address
    /// generation off and, with `hairpin`, hairpin mode on for its bridge
    /// port, in one request (one hold of the rtnl lock instead of three).
    /// Its peer must still be down: the kernel applies the flags before
    /// `IFLA_AF_SPEC`, and only the missing carrier (a veth has none while
    /// its peer is down) keeps the link from getting an IPv6 link-local
    /// address in between. Hairpin mode travels as the bridge port's
    /// options (`IFLA_INFO_SLAVE_DATA` / `IFLA_BRPORT_MODE`, what `ip link
    /// set … type bridge_slave hairpin on` sends): the sysfs knob
    /// `brport/hairpin_mode` takes the rtnl lock with a trylock and
    /// restarts the write while another holder has it, a busy loop on a
    /// CPU whenever launches contend for the lock.
    pub(crate) fn host_end_up(&mut self, name: &str, hairpin: bool) -> io::Result<()> {
        let message = |ipv6: bool| {
            let mut m = Message::new(RTM_NEWLINK, 0);
            m.ifinfo(0, libc::IFF_UP as u32, libc::IFF_UP as u32);
            m.attr(IFLA_IFNAME, &name_bytes(name));
            if hairpin {
                let info = m.begin(IFLA_LINKINFO);
                let port = m.begin(IFLA_INFO_SLAVE_DATA);
                m.attr(IFLA_BRPORT_MODE, &[1]);
                m.end(port);
                m.end(info);
            }
            if ipv6 {
                no_ipv6_spec(&mut m);
            }
            m
        };
        match self.request(message(true)) {
            // No IPv6 on the link (ipv6.disable=1, disable_ipv6): the
            // kernel refused the whole request before changing anything.
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => self.request(message(false)),
            other => other,
        }
    }

    /// Creates a veth pair: `host` here, down, attached to the bridge with
    /// index `master`; its peer `peer` created (down) in the namespace
    /// `peer_netns` with hardware address `peer_mac`.
    pub(crate) fn create_veth(
        &mut self,
        host: &str,
        master: u32,
        peer: &str,
        peer_netns: &OwnedFd,
        peer_mac: [u8; 6],
    ) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0);
        m.attr(IFLA_IFNAME, &name_bytes(host));
        m.attr(IFLA_MASTER, &master.to_ne_bytes());
        one_queue_each_way(&mut m);
        let info = m.begin(IFLA_LINKINFO);
        m.attr(IFLA_INFO_KIND, b"veth");
        let data = m.begin(IFLA_INFO_DATA);
        let peer_info = m.begin(VETH_INFO_PEER);
        // Neither end up yet: IPv6 address generation is turned off on each
        // before it goes up (the kernel refuses `IFLA_AF_SPEC` at creation);
        // the peer is brought up inside its namespace.
        let mut fixed = Vec::with_capacity(16);
        ifinfo_into(&mut fixed, 0, 0, 0);
        m.bytes(&fixed);
        m.attr(IFLA_IFNAME, &name_bytes(peer));
        let fd = u32::try_from(peer_netns.as_raw_fd()).expect("descriptors are not negative");
        m.attr(IFLA_NET_NS_FD, &fd.to_ne_bytes());
        m.attr(IFLA_ADDRESS, &peer_mac);
        one_queue_each_way(&mut m);
        m.end(peer_info);
        m.end(data);
        m.end(info);
        self.request(m)
    }

    /// Deletes the link called `name` (`ENODEV` when there is none).
    pub(crate) fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_DELLINK, 0);
        m.ifinfo(0, 0, 0);
        m.attr(IFLA_IFNAME, &name_bytes(name));
        self.request(m)
    }

    /// Adds `addr/prefix` (with its broadcast address) to link `index`
    /// (`EEXIST` when it is there).
    pub(crate) fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.bytes(&[libc::AF_INET as u8, prefix, 0, RT_SCOPE_UNIVERSE]);
        m.bytes(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        let broadcast = Ipv4Addr::from(u32::from(addr) | host_bits);
        m.attr(IFA_BROADCAST, &broadcast.octets());
        self.request(m)
    }

    /// Adds the route to `dst/dst_len` via `gateway` on link `index`
    /// (main table; `EEXIST` when it is there).
    pub(crate) fn add_route(
        &mut self,
        dst: Ipv4Addr,
        dst_len: u8,
        gateway: Ipv4Addr,
        index: u32,
    ) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        m.bytes(&[
            libc::AF_INET as u8,
            dst_len,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        m.bytes(&0u32.to_ne_bytes());
        if dst_len > 0 {
            m.attr(RTA_DST, &dst.octets());
        }
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.attr(RTA_OIF, &index.to_ne_bytes());
        self.request(m)
    }
}

/// A `NETLINK_ROUTE` socket of the calling thread's network namespace
/// subscribed to its link notifications, opened before the links it waits
/// for are looked up, so that no deletion falls between the two.
pub(crate) struct LinkWatch {
    fd: OwnedFd,
}

impl LinkWatch {
    /// Opens the socket and joins `RTMGRP_LINK`.
    pub(crate) fn open() -> io::Result<Self> {
        let Netlink { fd, .. } = Netlink::open()?;
        let size = WATCH_BUFFER;
        let set = |option: libc::c_int| {
            // SAFETY: `size` is a c_int that lives for the whole call.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    (&raw const size).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        // Past `rmem_max` needs CAP_NET_ADMIN; without it the ordinary
        // option (capped) still helps. An overflow is handled anyway.
        if set(libc::SO_RCVBUFFORCE) < 0 {
            set(libc::SO_RCVBUF);
        }
        // SAFETY: sockaddr_nl is plain old data; all zeroes is valid.
        let mut local: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        local.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        local.nl_groups = RTMGRP_LINK;
        // SAFETY: `local` is a valid sockaddr_nl for the length given.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const local).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        let watch = LinkWatch { fd };
        // Until the links are known, every deletion (the rest is noise);
        // without the filter everything is read and checked as before.
        if let Err(e) = watch.attach(&deletion_filter(None).expect("no indices")) {
            tracing::debug!("no filter on link notifications yet: {e}");
        }
        Ok(watch)
    }

    /// Narrows the socket to the deletions of `links` with a classic BPF
    /// socket filter (`SO_ATTACH_FILTER`, socket(7)): the kernel runs it on
    /// each notification before queueing it, so this socket's owner is not
    /// woken for every link that other launches create, change or delete.
    /// In a burst of launches ending together that is the difference
    /// between one wakeup per detach and one per link event on the host
    /// (each detach listened to everyone's). Notifications queued before
    /// the filter went on are still read and checked as before.
    pub(crate) fn only_deletions_of(&self, links: &[(u32, String)]) -> io::Result<()> {
        let indices: Vec<u32> = links.iter().map(|(index, _)| *index).collect();
        let program = deletion_filter(Some(&indices))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too many links"))?;
        self.attach(&program)
    }

    /// Attaches (or replaces) the socket's filter.
    fn attach(&self, program: &[libc::sock_filter]) -> io::Result<()> {
        let fprog = libc::sock_fprog {
            len: u16::try_from(program.len()).expect("the filter is short"),
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: `fprog` points at `program`, both alive for the whole
        // call; the kernel copies the program.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&raw const fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until the kernel has announced the deletion (`RTM_DELLINK`,
    /// `AF_UNSPEC`) of every link in `links` (index and name), or until
    /// `deadline`; the links not seen deleted by then stay in `links`. On
    /// a receive buffer overflow, notifications may have been lost: each
    /// link is then looked up by name again.
    pub(crate) fn wait_deleted(
        &self,
        links: &mut Vec<(u32, String)>,
        deadline: std::time::Instant,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while !links.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(left.as_millis() + 1).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd for the whole call.
            if unsafe { libc::poll(&raw mut pfd, 1, ms) } < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::ENOBUFS) => {
                        links.retain(|(index, name)| index_of(name).ok() == Some(*index));
                    }
                    Some(libc::EAGAIN | libc::EINTR) => {}
                    _ => return Err(e),
                }
                continue;
            }
            for (index, name) in deleted_links(&buf[..n as usize]) {
                links.retain(|(i, n)| !(*i == index && name.as_ref().is_none_or(|m| m == n)));
            }
        }
        Ok(())
    }
}

/// A classic BPF program accepting a netlink notification only when it is
/// an `RTM_DELLINK` of family `AF_UNSPEC`, of a link in `indices` if given;
/// `None` past what its 8-bit jump offsets reach. Loads are big-endian
/// (network order) and netlink fields are in host order, so each constant
/// is the field's bytes read big-endian.
fn deletion_filter(indices: Option<&[u32]>) -> Option<Vec<libc::sock_filter>> {
    const IFI_FAMILY: u32 = NLMSG_HDRLEN as u32;
    const IFI_INDEX: u32 = NLMSG_HDRLEN as u32 + 4;
    let k = match indices {
        Some(indices) => u8::try_from(indices.len()).ok().filter(|k| *k <= 200)?,
        None => 0,
    };
    let stmt = |code: u32, value: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k: value,
    };
    let jump = |value: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k: value,
    };
    let load = |size: u32, offset: u32| stmt(libc::BPF_LD | size | libc::BPF_ABS, offset);
    let delete = u32::from(u16::from_be_bytes(RTM_DELLINK.to_ne_bytes()));
    let drop = stmt(libc::BPF_RET | libc::BPF_K, 0);
    let accept = stmt(libc::BPF_RET | libc::BPF_K, u32::MAX);
    let Some(indices) = indices else {
        // 0 type, 1 test, 2 family, 3 test; drop at 4, accept at 5.
        return Some(vec![
            load(libc::BPF_H, 4),
            jump(delete, 0, 2),
            load(libc::BPF_B, IFI_FAMILY),
            jump(libc::AF_UNSPEC as u32, 1, 0),
            drop,
            accept,
        ]);
    };
    // 0 type, 1 test, 2 family, 3 test, 4 index, 5.. one test per index,
    // then drop at 5 + k and accept at 6 + k.
    let mut program = vec![
        load(libc::BPF_H, 4),
        jump(delete, 0, k + 3),
        load(libc::BPF_B, IFI_FAMILY),
        jump(libc::AF_UNSPEC as u32, 0, k + 1),
        load(libc::BPF_W, IFI_INDEX),
    ];
    for (j, index) in (0u8..).zip(indices) {
        program.push(jump(u32::from_be_bytes(index.to_ne_bytes()), k - j, 0));
    }
    program.push(drop);
    program.push(accept);
    Some(program)
}

/// The links whose deletion one datagram of notifications announces:
/// index and, when the message carries it, name.
fn deleted_links(mut data: &[u8]) -> Vec<(u32, Option<String>)> {
    const IFINFO_LEN: usize = 16;
    let mut found = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            break;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let body = &data[NLMSG_HDRLEN..len];
        // Only the link's own notification: the bridge announces its
        // port's removal too (`AF_BRIDGE`), before the link is gone.
        if kind == RTM_DELLINK && body.len() >= IFINFO_LEN && body[0] == libc::AF_UNSPEC as u8 {
            let index = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
            found.push((index, ifname_attr(&body[IFINFO_LEN..])));
        }
        data = &data[len.next_multiple_of(4).min(data.len())..];
    }
    found
}

/// The `IFLA_IFNAME` attribute among `attrs`, if any.
fn ifname_attr(mut attrs: &[u8]) -> Option<String> {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == IFLA_IFNAME {
            let value = &attrs[4..len];
            let value = value.split(|b| *b == 0).next().unwrap_or_default();
            return String::from_utf8(value.to_vec()).ok();
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    None
}

/// The acknowledgement of request `seq` in one datagram, if it is there:
/// `Ok` for error code 0, the errno otherwise.
fn ack_of(mut data: &[u8], seq: u32) -> Option<io::Result<()>> {
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink reply",
            )));
        }
        let kind = u16::from_ne_bytes(data[4..6].try_into().ok()?);
        let their_seq = u32::from_ne_bytes(data[8..12].try_into().ok()?);
        if kind == NLMSG_ERROR && their_seq == seq && len >= NLMSG_HDRLEN + 4 {
            let code = i32::from_ne_bytes(data[16..20].try_into().ok()?);
            return Some(if code == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(-code))
            });
        }
        let aligned = len.next_multiple_of(4).min(data.len());
        data = &data[aligned..];
    }
    None
}

/// The index of interface `name` in the calling thread's namespace.
pub(crate) fn index_of(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested_lengths_cover_their_children() {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE);
        m.ifinfo(0, 0, 0);
        m.attr(IFLA_IFNAME, &name_bytes("br0")); // 4 + 4 bytes
        let info = m.begin(IFLA_LINKINFO);
        m.attr(IFLA_INFO_KIND, b"bridge"); // 4 + 6, padded to 12
        m.end(info);
        let bytes = m.finish(7);
        assert_eq!(bytes.len(), NLMSG_HDRLEN + 16 + 8 + 4 + 12);
        assert_eq!(
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 7);
        let nested = NLMSG_HDRLEN + 16 + 8;
        assert_eq!(
            u16::from_ne_bytes(bytes[nested..nested + 2].try_into().unwrap()),
            16
        );
    }

    #[test]
    fn deletions_are_read_from_link_notifications() {
        let notification = |kind: u16, family: u8, index: u32, name: &str| {
            let mut m = Message::new(kind, 0);
            m.ifinfo(index, 0, 0);
            m.buf[NLMSG_HDRLEN] = family;
            m.attr(IFLA_MASTER, &3u32.to_ne_bytes());
            m.attr(IFLA_IFNAME, &name_bytes(name));
            m.finish(0)
        };
        let mut datagram = notification(RTM_NEWLINK, 0, 5, "ph1");
        datagram.extend(notification(RTM_DELLINK, libc::AF_BRIDGE as u8, 6, "ph2"));
        datagram.extend(notification(RTM_DELLINK, 0, 7, "ph3"));
        assert_eq!(deleted_links(&datagram), [(7, Some("ph3".to_owned()))]);
        // A truncated message ends the datagram without a panic.
        let cut = datagram.len() - 3;
        assert_eq!(deleted_links(&datagram[..cut]), []);
        assert_eq!(deleted_links(&[1, 2, 3]), []);
    }

    #[test]
    fn acknowledgements_are_matched_by_sequence() {
        let reply = |seq: u32, code: i32| {
            let mut b = Vec::new();
            b.extend_from_slice(&36u32.to_ne_bytes());
            b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            b.extend_from_slice(&0u16.to_ne_bytes());
            b.extend_from_slice(&seq.to_ne_bytes());
            b.extend_from_slice(&0u32.to_ne_bytes());
            b.extend_from_slice(&code.to_ne_bytes());
            b.extend_from_slice(&[0u8; 16]);
            b
        };
        assert!(ack_of(&reply(3, 0), 3).unwrap().is_ok());
        let e = ack_of(&reply(3, -libc::EEXIST), 3).unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(
            ack_of(&reply(2, 0), 3).is_none(),
            "another request's answer"
        );
        assert!(ack_of(&reply(3, 0)[..20], 3).unwrap().is_err(), "truncated");
    }

    #[test]
    fn privileged_a_filtered_watch_hears_only_its_links_deletion() {
        if !nix::unistd::Uid::effective().is_root() {
            println!("skipping: needs root");
            return;
        }
        // A network namespace of this thread's own: nothing on the host.
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let mut nl = Netlink::open().unwrap();
            nl.create_bridge("phfa").unwrap();
            nl.create_bridge("phfb").unwrap();
            let (a, b) = (index_of("phfa").unwrap(), index_of("phfb").unwrap());
            let watch = LinkWatch::open().unwrap();
            // Opened, the watch already ignores everything but deletions.
            nl.create_bridge("phfc").unwrap();
            let mut buf = [0u8; 4096];
            let queued = |buf: &mut [u8]| {
                // SAFETY: `buf` is valid for writes of its length.
                unsafe {
                    libc::recv(
                        watch.fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                }
            };
            assert_eq!(queued(&mut buf), -1, "phfc's creation was queued");
            let mut links = vec![(b, "phfb".to_owned())];
            watch.only_deletions_of(&links).unwrap();
            // phfb goes first: what follows it stays queued unless the
            // filter dropped it.
            nl.delete_link("phfb").unwrap();
            nl.set_up(a).unwrap();
            nl.delete_link("phfa").unwrap();
            let started = std::time::Instant::now();
            let deadline = started + std::time::Duration::from_secs(30);
            watch.wait_deleted(&mut links, deadline).unwrap();
            assert!(links.is_empty(), "phfb's deletion was not heard");
            assert!(started.elapsed() < std::time::Duration::from_secs(20));
            // Nothing else got through: not phfc's creation, nor phfa's
            // change and deletion (index {a}).
            let n = queued(&mut buf);
            assert_eq!(
                n,
                -1,
                "more was queued: {:?} (phfa was {a})",
                deleted_links(&buf[..n.max(0) as usize])
            );
        })
        .join()
        .unwrap();
    }
}
