//! Host name resolution without NSS. `phobos` is a static glibc binary,
//! where `getaddrinfo(3)` would `dlopen` the NSS modules of whatever glibc
//! the host has (a hazard, and a link-time warning), so registry and fetcher
//! hosts are resolved here: IP literals directly (no lookup at all, the case of
//! every test registry on 127.0.0.1 and [::1]), `localhost`, then
//! `/etc/hosts`, then DNS A/AAAA queries over UDP to the `nameserver`s of
//! `/etc/resolv.conf`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// Resolves `host:port` (`[v6]:port` too).
pub fn resolve(netloc: &str) -> io::Result<Vec<SocketAddr>> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let nameservers: Vec<SocketAddr> = resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ns| ns.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    resolve_with(netloc, &hosts, &nameservers)
}

fn not_found(host: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("cannot resolve host {host:?}"),
    )
}

/// [`resolve`] with the hosts file's text and the name servers given.
pub fn resolve_with(
    netloc: &str,
    hosts: &str,
    nameservers: &[SocketAddr],
) -> io::Result<Vec<SocketAddr>> {
    if let Ok(addr) = netloc.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let (host, port) = netloc
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad address {netloc:?}"),
            )
        })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    let from_hosts: Vec<SocketAddr> = hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip = words.next()?.parse::<IpAddr>().ok()?;
            words
                .any(|w| w.eq_ignore_ascii_case(&lower))
                .then_some(SocketAddr::new(ip, port))
        })
        .collect();
    if !from_hosts.is_empty() {
        return Ok(from_hosts);
    }
    let mut out = Vec::new();
    for ns in nameservers {
        for qtype in [1u16, 28] {
            if let Ok(ips) = query(*ns, &lower, qtype) {
                out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, port)));
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    Err(not_found(host))
}

/// One DNS query (type A = 1 or AAAA = 28) over UDP.
fn query(server: SocketAddr, name: &str, qtype: u16) -> io::Result<Vec<IpAddr>> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(io::Error::other)?;
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(Duration::from_secs(3)))?;
    socket.connect(server)?;
    let id = u16::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..2]
            .try_into()
            .unwrap_or([0, 1]),
    );
    let message = build_query(id, name, qtype)?;
    socket.send(&message)?;
    let mut buf = [0u8; 1500];
    loop {
        let n = socket.recv(&mut buf)?;
        if let Some(ips) = parse_answer(&buf[..n], id, qtype) {
            return Ok(ips);
        }
    }
}

fn build_query(id: u16, name: &str, qtype: u16) -> io::Result<Vec<u8>> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad host name {name:?}"),
            ));
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    Ok(m)
}

/// The addresses of type `qtype` in a response to query `id`; `None` for
/// a datagram that is not that response.
fn parse_answer(m: &[u8], id: u16, qtype: u16) -> Option<Vec<IpAddr>> {
    if m.len() < 12 || u16::from_be_bytes([m[0], m[1]]) != id || m[2] & 0x80 == 0 {
        return None;
    }
    let qd = u16::from_be_bytes([m[4], m[5]]);
    let an = u16::from_be_bytes([m[6], m[7]]);
    let mut pos = 12;
    let skip_name = |mut pos: usize| -> Option<usize> {
        loop {
            let len = *m.get(pos)? as usize;
            if len & 0xc0 == 0xc0 {
                return Some(pos + 2);
            }
            pos += 1 + len;
            if len == 0 {
                return Some(pos);
            }
        }
    };
    for _ in 0..qd {
        pos = skip_name(pos)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        pos = skip_name(pos)?;
        let rr = m.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([rr[0], rr[1]]);
        let len = u16::from_be_bytes([rr[8], rr[9]]) as usize;
        let data = m.get(pos + 10..pos + 10 + len)?;
        match (rtype, len) {
            (1, 4) if qtype == 1 => out.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (28, 16) if qtype == 28 => out.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => {}
        }
        pos += 10 + len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_localhost_and_hosts_file_need_no_lookup() {
        assert_eq!(
            resolve_with("127.0.0.1:5000", "", &[]).unwrap(),
            vec!["127.0.0.1:5000".parse().unwrap()]
        );
        assert_eq!(
            resolve_with("[::1]:5000", "", &[]).unwrap(),
            vec!["[::1]:5000".parse().unwrap()]
        );
        assert_eq!(resolve_with("localhost:80", "", &[]).unwrap().len(), 2);
        let hosts = "# c\n10.1.2.3  reg.lan reg # x\n";
        assert_eq!(
            resolve_with("REG:443", hosts, &[]).unwrap(),
            vec!["10.1.2.3:443".parse().unwrap()]
        );
        assert!(resolve_with("nowhere.invalid:443", hosts, &[]).is_err());
    }

    #[test]
    fn asks_a_real_udp_name_server() {
        // A name server on 127.0.0.1 answering every A query with a CNAME
        // and an address, through name compression.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let q = &buf[..n];
                let qtype = u16::from_be_bytes([q[n - 4], q[n - 3]]);
                let mut r = q.to_vec();
                r[2] = 0x81;
                r[3] = 0x80;
                if qtype == 1 {
                    r[7] = 2;
                    // CNAME -> pointer to the question name, then an A record.
                    r.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
                }
                server.send_to(&r, from).unwrap();
            }
        });
        let got = resolve_with("registry.example.com:443", "", &[addr]).unwrap();
        assert_eq!(got, vec!["192.0.2.7:443".parse().unwrap()]);
        thread.join().unwrap();
    }
}
