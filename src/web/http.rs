//! A minimal outbound HTTP/1.1 client for webhooks to intranet gateways (SMS, WeChat). Plain
//! `http://` only: the air-gapped deployments this serves terminate TLS at their own gateway.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Splits `http://host[:port]/path` into (host, port, path).
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| "仅支持 http:// 地址（内网网关）".to_string())?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| "端口无效".to_string())?),
        None => (hostport, 80),
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err("主机名无效".into());
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// POSTs `body` and returns the response status code.
pub async fn post(url: &str, headers: &[(&str, String)], body: &[u8], timeout: Duration) -> Result<u16, String> {
    let (host, port, path) = parse_url(url)?;
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("连接失败：{e}"))?;
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
        assert!(parse_url("https://x").is_err());
        assert!(parse_url("http://u@evil/").is_err());
    }
}
