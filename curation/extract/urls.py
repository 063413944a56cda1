"""URL canonicalisation and domains, shared by extraction (the `url_canonical` and `domain` columns)
and URL-level deduplication.

Rules of `canonicalize_url` (each one a way two fetches of the same page get different strings):

* scheme and host lower case; IDNA hosts kept as their ASCII (punycode) form; a trailing dot on the
  host dropped; default ports (http 80, https 443) dropped;
* the fragment dropped (`#section` is never sent to the server);
* tracking parameters dropped: `utm_*`, `fbclid`, `gclid`, `dclid`, `msclkid`, `mc_cid`, `mc_eid`,
  `_ga`, `yclid`, `igshid`, `ref_src`, session ids (`jsessionid`, `phpsessid`, `sid`), ...;
* remaining query parameters sorted (by key, then value; blank values kept), `?` dropped when empty;
* path: empty path becomes `/`; `.`/`..` segments resolved; duplicate slashes collapsed; a trailing
  slash removed except on the root (`/a/b/` == `/a/b`); percent-escapes normalised (upper-case hex,
  unreserved characters decoded, spaces and other unsafe characters encoded);
* `http` and `https` are kept distinct (they can serve different content); `www.` is kept in the
  canonical URL but dropped by `domain_of` (which returns the registrable domain, eTLD+1).

A value that is not an absolute http(s)/ftp URL returns None from `canonicalize_url`; nothing raises.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
SCHEMES = {"http", "https", "ftp"}

TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gclsrc", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid",
    "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "ref_src", "ref_url", "spm", "scid",
    "jsessionid", "phpsessid", "sid", "sessionid", "aspsessionid", "cfid", "cftoken",
    "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "twclid", "ttclid", "srsltid",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")

_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = "/:@!$'()*+,;-._~%?"
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")
_SESSION_IN_PATH = re.compile(r";(jsessionid|phpsessid|sid)=[^/?#]*", re.I)


def is_tracking_param(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES)


def _normalise_escapes(s: str, safe: str) -> str:
    """Decode escapes of unreserved characters, upper-case the rest, encode unsafe characters."""
    def repl(m):
        ch = chr(int(m.group(1), 16))
        if ch.isalnum() and ch.isascii() or ch in "-._~":
            return ch
        return "%" + m.group(1).upper()
    s = _UNRESERVED.sub(repl, s)
    return quote(s, safe=safe)


def _normalise_path(path: str) -> str:
    path = _SESSION_IN_PATH.sub("", path)
    if not path:
        return "/"
    path = re.sub(r"/{2,}", "/", path)
    out: list[str] = []
    segments = path.split("/")
    for seg in segments[1:] if path.startswith("/") else segments:
        if seg == ".":
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    path = "/" + "/".join(out)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return _normalise_escapes(path, _PATH_SAFE)


def _host(netloc_host: str | None) -> str | None:
    if not netloc_host:
        return None
    host = netloc_host.strip().rstrip(".").lower()
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if any(c in host for c in " <>\"{}|\\^`"):
        return None
    return host


def canonicalize_url(url: str | None) -> str | None:
    """The canonical form of an absolute URL (rules in the module doc), or None if it is not one."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    # WARC-Target-URI is sometimes wrapped in <...> (WARC 0.18 / some crawlers)
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1].strip()
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            return None
        host = _host(parts.hostname)
        if host is None:
            return None
        try:
            port = parts.port
        except ValueError:
            return None
    except ValueError:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = _normalise_path(parts.path)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if not is_tracking_param(k)]
    params.sort()
    query = urlencode(params, doseq=False, safe=_QUERY_SAFE, quote_via=quote)
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str | None) -> str | None:
    """The lower-case host of a URL (no port, no trailing dot), or None."""
    if not url or not isinstance(url, str):
        return None
    u = url.strip()
    if u.startswith("<") and u.endswith(">"):
        u = u[1:-1]
    try:
        return _host(urlsplit(u).hostname)
    except ValueError:
        return None


_EXTRACT = None


def _extractor():
    """tldextract with the public-suffix snapshot bundled in the package: never fetched (no suffix
    list URLs), never cached on disk. Private suffixes (github.io, blogspot.com) count as suffixes,
    so `user.github.io` is its own site."""
    global _EXTRACT
    if _EXTRACT is None:
        import tldextract
        _EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                         fallback_to_snapshot=True, include_psl_private_domains=True)
    return _EXTRACT


def registrable_domain(host: str | None) -> str | None:
    """eTLD+1 of a host name (`blog.example.co.uk` -> `example.co.uk`) by the public-suffix list;
    a host without a known suffix (an IP address, `localhost`, an intranet name) is returned as is."""
    if not host:
        return None
    r = _extractor().extract_str(host, include_psl_private_domains=True)
    if r.suffix and r.domain:
        return f"{r.domain}.{r.suffix}"
    return host


def domain_of(url: str | None) -> str | None:
    """The registrable domain (eTLD+1, public-suffix list bundled with tldextract, offline) of a URL's
    host, in lower case: `https://www.blog.example.co.uk/x` -> `example.co.uk`. Per-domain statistics
    (the filter's PII share, the report) count a site's subdomains together. Hosts without a public
    suffix (IP addresses, `localhost`) are returned without a leading `www.`."""
    host = host_of(url)
    if host is None:
        return None
    return registrable_domain(re.sub(r"^www\d*\.", "", host))
