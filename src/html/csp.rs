//! The page's Content-Security-Policy: every script, style and `onload`
//! handler allowed by the SHA-256 of its text, so that nothing a host
//! wrote can run.

/// The scripts and styles the page may run: each by the SHA-256 of its
/// text, so that nothing else runs, whatever a host's text holds. The
/// policy is inherited by the flamegraph frames (`srcdoc`), so inferno's
/// script and style and its `onload` handler are listed too.
#[derive(Default)]
pub(super) struct Csp {
    pub(super) scripts: std::collections::BTreeSet<String>,
    pub(super) styles: std::collections::BTreeSet<String>,
    pub(super) handlers: std::collections::BTreeSet<String>,
}

impl Csp {
    pub(super) fn policy(&self) -> String {
        let list = |set: &std::collections::BTreeSet<String>| {
            set.iter().map(|h| format!(" '{h}'")).collect::<String>()
        };
        let handlers = if self.handlers.is_empty() {
            String::new()
        } else {
            format!(" 'unsafe-hashes'{}", list(&self.handlers))
        };
        format!(
            "default-src 'none'; script-src{}{handlers}; style-src{}; img-src data:; frame-src 'self' about: data:",
            list(&self.scripts),
            list(&self.styles)
        )
    }

    /// Lists the scripts, styles and `onload` handler of one SVG document.
    pub(super) fn svg(&mut self, svg: &str) {
        for (open, close, set) in [
            ("<script", "</script>", &mut self.scripts),
            ("<style", "</style>", &mut self.styles),
        ] {
            let mut rest = svg;
            while let Some(at) = rest.find(open) {
                let Some(tag_end) = rest[at..].find('>') else {
                    break;
                };
                let body = &rest[at + tag_end + 1..];
                let Some(end) = body.find(close) else { break };
                // an SVG's CDATA sections are text in HTML's foreign
                // content: the element's text is what is around and inside them
                let mut text = String::new();
                let mut raw = &body[..end];
                while let Some(at) = raw.find("<![CDATA[") {
                    text.push_str(&raw[..at]);
                    let inner = &raw[at + 9..];
                    let close = inner.find("]]>").unwrap_or(inner.len());
                    text.push_str(&inner[..close]);
                    raw = inner.get(close + 3..).unwrap_or("");
                }
                text.push_str(raw);
                set.insert(sha256(&text));
                rest = &body[end..];
            }
        }
        if let Some(at) = svg.find(" onload=\"") {
            let value = &svg[at + 9..];
            if let Some(end) = value.find('"') {
                self.handlers.insert(sha256(&value[..end]));
            }
        }
    }
}

/// `sha256-BASE64` of `text`, a CSP hash source.
pub(super) fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    format!("sha256-{}", base64(&sha2::Sha256::digest(text.as_bytes())))
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_hashes_are_base64_of_sha256() {
        // printf '' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            sha256(""),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
