"""Small WARC files written by warcio for tests: real record-gzipped WARCs of given pages."""
import io


def write_warc(path, pages, gzip=True):
    """A WARC of HTTP responses, one gzip member per record: pages = [(url, html bytes, extra
    http headers or None)]. Returns the path as a string."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=gzip)
        for url, body, extra in pages:
            hdrs = [("Content-Type", "text/html; charset=utf-8")] + list(extra or [])
            http = StatusAndHeaders("200 OK", hdrs, protocol="HTTP/1.1")
            rec = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                       warc_headers_dict={"WARC-Date": "2024-01-02T03:04:05Z"})
            w.write_record(rec)
    return str(path)


def page(i: int, words: str = "ordinary") -> bytes:
    return (b"<html><head><title>Page %d</title></head><body><article><p>" % i +
            f"A plain paragraph of {words} words, number {i}, for the test. ".encode() * 20 +
            b"</p></article></body></html>")


def member_starts(path) -> list[int]:
    """Start offsets of the gzip members of a record-gzipped file (one member per record, as
    `write_warc` and Common Crawl write them), found by inflating each member to its end."""
    import zlib
    data = open(path, "rb").read()
    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        if not d.eof:                   # a truncated last member
            break
        pos = len(data) - len(d.unused_data)
    return starts


def first_records(path, n: int) -> bytes:
    """The first `n` gzip members (WARC records) of a record-gzipped WARC, as bytes: a small
    real input cut from the sample crawl."""
    starts = member_starts(path)
    data = open(path, "rb").read()
    return data[:starts[n]] if n < len(starts) else data
