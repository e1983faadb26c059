//! A minimal outbound HTTP/1.1 client for webhooks to intranet gateways (SMS, WeChat). Plain
//! `http://` only: the air-gapped deployments this serves terminate TLS at their own gateway.
//!
//! A webhook's address is typed by a unit contact, so it must not reach what only the server
//! can: the machine itself (its database, its own admin pages), link-local addresses (a cloud's
//! metadata service), unspecified, multicast or broadcast ones. The address is checked when it
//! is registered and, after resolving the name, again at every delivery (a name may resolve
//! elsewhere later); the URL holds no space, control or non-ASCII character, so nothing can be
//! smuggled into the request line.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Splits `http://host[:port]/path` into (host, port, path).
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| "仅支持 http:// 地址（内网网关）".to_string())?;
    if !rest.chars().all(|c| c.is_ascii_graphic()) {
        return Err("地址中不能有空格、换行或中文等字符（请先进行 URL 编码）".into());
    }
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| "端口无效".to_string())?),
        None => (hostport, 80),
    };
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
        return Err("主机名无效".into());
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// Whether a webhook may be delivered to `ip` (see the module's doc); `loopback` allows the
/// machine itself, for a gateway installed beside linli.
pub fn reachable(ip: IpAddr, loopback: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    if ip.is_loopback() || own(ip) {
        return loopback;
    }
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_link_local() || v4.is_multicast() || v4.is_broadcast()),
        // fe80::/10 is link-local.
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80),
    }
}

/// Whether `ip` is one of this machine's own addresses (its LAN address reaches the services
/// listening on all interfaces, the database's among them, as 127.0.0.1 would). The kernel
/// routes a datagram to an own address over the loopback, from that same address: a UDP
/// `connect` (which sends nothing) shows the source it chose.
fn own(ip: IpAddr) -> bool {
    let any: std::net::SocketAddr =
        if ip.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    std::net::UdpSocket::bind(any)
        .and_then(|s| s.connect((ip, 9)).and_then(|()| s.local_addr()))
        .is_ok_and(|local| local.ip() == ip)
}

/// Checks a webhook URL when it is registered: its form, and a host written as an address
/// (or `localhost`) against [`reachable`]. A name is resolved at delivery.
pub fn check_url(url: &str, loopback: bool) -> Result<(), String> {
    let (host, _, _) = parse_url(url)?;
    let refused = match host.parse::<IpAddr>() {
        Ok(ip) => !reachable(ip, loopback),
        Err(_) => {
            // `localhost.` (fully qualified) and the names under .localhost are this machine too.
            let h = host.trim_end_matches('.').to_ascii_lowercase();
            !loopback && (h == "localhost" || h.ends_with(".localhost"))
        }
    };
    if refused { Err(REFUSED.into()) } else { Ok(()) }
}

/// [`check_url`], then a host that resolves now (127.1, 2130706433, 0x7f000001, `localhost.`
/// are names to the parser but this machine to the resolver) checked as delivery will check
/// it. A name that does not resolve yet is taken (an intranet's DNS may come later); delivery
/// checks every address again.
pub async fn check_url_resolved(url: &str, loopback: bool) -> Result<(), String> {
    check_url(url, loopback)?;
    let (host, port, _) = parse_url(url)?;
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let lookup = tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host((host.as_str(), port))).await;
    match lookup {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if !addrs.is_empty() && addrs.iter().all(|a| !reachable(a.ip(), loopback)) { Err(REFUSED.into()) } else { Ok(()) }
        }
        _ => Ok(()),
    }
}

const REFUSED: &str = "不能推送到本机、链路本地、组播或未指定地址";

/// POSTs `body` and returns the response status code.
pub async fn post(url: &str, headers: &[(&str, String)], body: &[u8], timeout: Duration, loopback: bool) -> Result<u16, String> {
    let (host, port, path) = parse_url(url)?;
    let fut = async {
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| format!("解析主机名失败：{e}"))?.collect();
        // Connected to an address checked here, not to the name again (it could resolve anew).
        let to = addrs.into_iter().find(|a| reachable(a.ip(), loopback)).ok_or_else(|| REFUSED.to_string())?;
        let mut s = tokio::net::TcpStream::connect(to).await.map_err(|e| format!("连接失败：{e}"))?;
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: linli\r\n",
            body.len()
        );
        for (k, v) in headers {
            if v.contains(['\r', '\n']) {
                return Err("请求头含有换行".to_string());
            }
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.map_err(|e| format!("发送失败：{e}"))?;
        s.write_all(body).await.map_err(|e| format!("发送失败：{e}"))?;
        let mut head = vec![0u8; 64];
        let n = s.read(&mut head).await.map_err(|e| format!("读取响应失败：{e}"))?;
        let line = String::from_utf8_lossy(&head[..n]);
        line.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| "响应格式无效".to_string())
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| "请求超时".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("http://10.1.2.3:8081/sms/send").unwrap(), ("10.1.2.3".into(), 8081, "/sms/send".into()));
        assert_eq!(parse_url("http://gw.intranet").unwrap(), ("gw.intranet".into(), 80, "/".into()));
        assert_eq!(parse_url("http://gw/a%20b?x=1").unwrap().2, "/a%20b?x=1");
        assert!(parse_url("https://x").is_err());
        assert!(parse_url("http://u@evil/").is_err());
        assert!(parse_url("http://gw/hook HTTP/1.1\r\nHost: internal\r\n\r\nFLUSHALL").is_err());
        assert!(parse_url("http://gw/短信").is_err());
        assert!(parse_url("http://gw\t/").is_err());
    }

    #[test]
    fn the_machines_own_address_is_the_machine() {
        // Its LAN address: the source the kernel picks towards an outside address.
        let lan = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect("203.0.113.1:9").and_then(|()| s.local_addr()));
        let Ok(lan) = lan.map(|a| a.ip()) else {
            eprintln!("no route out of this machine: its own-address check is not exercised here");
            return;
        };
        assert!(!lan.is_loopback());
        assert!(!reachable(lan, false), "{lan} reaches the services listening on all interfaces");
        assert!(reachable(lan, true), "unless the machine itself is allowed");
        assert!(reachable("203.0.113.1".parse().unwrap(), false));
    }

    #[test]
    fn addresses() {
        for ok in ["10.1.2.3", "192.168.0.9", "172.16.5.5", "59.1.2.3", "fd00::1"] {
            assert!(reachable(ok.parse().unwrap(), false), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!reachable(bad.parse().unwrap(), false), "{bad}");
        }
        assert!(reachable("127.0.0.1".parse().unwrap(), true));
        assert!(!reachable("169.254.169.254".parse().unwrap(), true));
        assert!(check_url("http://localhost:5432/", false).is_err());
        assert!(check_url("http://127.0.0.1:19999/hook", false).is_err());
        assert!(check_url("http://127.0.0.1:19999/hook", true).is_ok());
        assert!(check_url("http://sms.gov.intranet/send", false).is_ok());
    }
}
