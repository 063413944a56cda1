"""URL canonicalisation rules (issue 3's URL-dedup key) and domains."""
import pytest

from curation.extract.urls import canonicalize_url, domain_of, host_of


@pytest.mark.parametrize("raw, canon", [
    ("HTTP://Example.COM/Path", "http://example.com/Path"),                 # scheme+host lower, path kept
    ("http://example.com:80/a", "http://example.com/a"),                    # default port
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),          # non-default port kept
    ("http://example.com/a#section-2", "http://example.com/a"),            # fragment
    ("http://example.com/a?utm_source=x&utm_medium=y&id=3", "http://example.com/a?id=3"),
    ("http://example.com/a?fbclid=abc", "http://example.com/a"),
    ("http://example.com/a?gclid=1&b=2&a=1", "http://example.com/a?a=1&b=2"),  # sorted, gclid gone
    ("http://example.com/a/", "http://example.com/a"),                      # trailing slash
    ("http://example.com", "http://example.com/"),                          # empty path -> /
    ("http://example.com/", "http://example.com/"),
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com//a//b", "http://example.com/a/b"),
    ("http://example.com/%7euser/%c3%a9", "http://example.com/~user/%C3%A9"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com./x", "http://example.com/x"),
    ("http://bücher.de/", "http://xn--bcher-kva.de/"),
    ("<http://example.com/x>", "http://example.com/x"),
    ("http://example.com/a;jsessionid=ABC123?x=1", "http://example.com/a?x=1"),
    ("http://example.com/a?q=", "http://example.com/a?q="),
])
def test_canonicalize(raw, canon):
    assert canonicalize_url(raw) == canon


def test_variants_collapse_to_one_key():
    variants = [
        "https://www.Example.com:443/news/story/?utm_campaign=spring&b=2&a=1#top",
        "https://www.example.com/news/story?a=1&b=2",
        "https://WWW.EXAMPLE.COM/news//story/?b=2&a=1&fbclid=XYZ",
    ]
    assert len({canonicalize_url(v) for v in variants}) == 1
    # http and https stay distinct, different queries stay distinct
    assert canonicalize_url("http://example.com/a") != canonicalize_url("https://example.com/a")
    assert canonicalize_url("http://e.com/a?id=1") != canonicalize_url("http://e.com/a?id=2")


@pytest.mark.parametrize("bad", [None, "", "not a url", "mailto:a@b.c", "dns:example.com",
                                  "http://", "http://exa mple.com/", "http://example.com:99999/"])
def test_not_a_url_is_none(bad):
    assert canonicalize_url(bad) is None


def test_domain_of():
    assert domain_of("https://WWW.Example.co.uk:8080/x") == "example.co.uk"
    assert domain_of("http://www2.example.com/") == "example.com"
    # the registrable domain (eTLD+1, tldextract's bundled public-suffix list, offline)
    assert domain_of("http://blog.example.com/") == "example.com"
    assert domain_of("https://news.bbc.co.uk/a") == "bbc.co.uk"
    assert domain_of("https://alice.github.io/x") == "alice.github.io"      # private suffix
    assert domain_of("http://192.168.1.10:8080/") == "192.168.1.10"
    assert domain_of("http://localhost/") == "localhost"
    assert domain_of("http://wwwexample.com/") == "wwwexample.com"
    assert domain_of("garbage") is None
    assert host_of("http://www.example.com./") == "www.example.com"
