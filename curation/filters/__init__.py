"""Quality, safety and PII filtering: annotate every document with signal columns, then decide.

Modules, one per signal family (each a plain function over a text; no Spark):
  text.py           lines, paragraphs and words of a document (shared by the signals)
  repetition.py     Gopher / Llama 3 repetition: duplicate lines, paragraphs, n-gram coverage
  gopher.py         Gopher quality: word count, mean word length, symbols, bullets, ellipses, stop words
  c4.py             C4 and FineWeb line rules
  dirty_words.py    ldnoobw word lists (28 languages), word boundaries that work without spaces
  token_kl.py       token-distribution KL divergence against a per-language reference (cl100k),
                    with a measured length correction (token_kl_excess)
  token_kl_reference.py  builds that reference from the sample corpus (python -m ...)
  url_blocklist.py  UT1 domain/URL lists, FineWeb banned and soft-banned URL words
  pii.py            e-mail, phone, public IP, card (Luhn), IBAN (mod 97), US SSN: find and redact
  annotate.py       a pandas batch -> the batch plus every signal column
  decide.py         signal columns + thresholds -> keep, drop_reasons (Spark and pandas, same rules)
  stage.py          run_filter(spark, input_path, output_path, config, stats_path)
"""
