"""Passages: whole sentences, exact offsets, headings on their own, no boilerplate or code."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa_service.core.furniture import MAX_BOILERPLATE_CHARS, furniture_lines
from qa_service.core.layout import LineKind, is_prose_line, line_kind
from qa_service.core.passages import MAX_PASSAGE_CHARS, MAX_PASSAGE_SENTENCES, split_passages
from qa_service.core.sentences import split_sentences

BOILERPLATE = [
    "Share",
    "Menu",
    "Subscribe to our newsletter for updates",
    "Instagram logo",
    "Featured Posts",
    "Related Posts",
    '"*" indicates required fields',
]
FOOTNOTES = ["1", "2", "12", ".", "😀"]
CODE_LINES = ["$ ls -la /etc/apt", "# apt-get install foo", "/var/log/dpkg {", "x = compute(y);"]


def assert_exact(text: str, passage) -> None:
    """Every offset of a passage reproduces it from the source text."""
    assert text[passage.start : passage.end] == passage.text
    assert passage.byte_start == len(text[: passage.start].encode("utf-8"))
    assert passage.byte_end == len(text[: passage.end].encode("utf-8"))
    raw = text.encode("utf-8")[passage.byte_start : passage.byte_end]
    assert raw.decode("utf-8") == passage.text
    assert passage.line_start == text.count("\n", 0, passage.start) + 1
    assert passage.line_end == text.count("\n", 0, passage.end - 1) + 1
    for start, end in passage.sentences:
        assert passage.start <= start < end <= passage.end


def test_seed_passages_are_exact_and_sized(seed_texts):
    for name, text in seed_texts.items():
        passages = split_passages(text, name)
        assert passages, name
        for passage in passages:
            assert_exact(text, passage)
            assert 1 <= len(passage.sentences) <= MAX_PASSAGE_SENTENCES
            assert len(passage.text) <= MAX_PASSAGE_CHARS or len(passage.sentences) == 1
            assert passage.id == f"{name}:{passage.start}-{passage.end}"


def test_seed_boilerplate_and_footnotes_never_become_passages(seed_texts):
    for name, text in seed_texts.items():
        for passage in split_passages(text, name):
            lines = {line.strip() for line in passage.text.splitlines()}
            assert not lines & set(BOILERPLATE), passage.text
            assert re.search(r"[^\W\d_]", passage.text), passage.text
            # A lone footnote number line never sits inside a passage.
            assert not any(re.fullmatch(r"\d+|\.", line) for line in lines), passage.text


def test_a_seed_headline_is_a_passage_of_its_own(seed_texts):
    # A question whose key words are only in the headline must find it.
    name = "003_1650bec134086eef.txt"
    headline = "Microsoft’s LinkedIn Under Fire for Alleged Data Misuse for Training AI"
    passages = split_passages(seed_texts[name], name)
    assert [p.text for p in passages if headline in p.text] == [headline]


def test_footnote_lines_inside_a_sentence_do_not_shift_offsets(seed_texts):
    name = "001_d2a1e9c52261be42.txt"
    text = seed_texts[name]
    passages = split_passages(text, name)
    sentence = "The lawsuit seeks damages of $1,000 per plaintiff"
    (passage,) = [p for p in passages if sentence in p.text]
    assert passage.text.startswith(sentence)
    assert text.index(sentence) == passage.start


def test_offsets_after_an_emoji_outside_the_bmp_count_code_points():
    text = "Intro 😀 sentence here is fine.\nSecond line of prose is here too.\n"
    first, second = split_passages(text, "x.txt")
    assert second.start == text.index("Second")
    assert second.byte_start == second.start + 3  # the emoji is 4 bytes, 1 code point
    assert first.text == "Intro 😀 sentence here is fine."


def test_sentences_respect_abbreviations_and_initials():
    text = "The U.S. District Court in N.D. Cal. heard it. Dr. Smith said no. It ended."
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == [
        "The U.S. District Court in N.D. Cal. heard it.",
        "Dr. Smith said no.",
        "It ended.",
    ]


def test_long_sentence_stays_whole_and_groups_stay_under_the_limit():
    long_sentence = "Word " * 150 + "end."
    short = "A short sentence follows here."
    text = f"{long_sentence} {short} {short[:-1]} again. {short[:-1]} thrice."
    passages = split_passages(text, "x.txt")
    assert passages[0].text == long_sentence
    assert all(len(p.text) <= MAX_PASSAGE_CHARS for p in passages[1:])


def test_a_line_ending_in_a_colon_keeps_its_quotation():
    text = "In response, the company said:\u00a0\n\nThese are false claims with no merit.\n"
    (passage,) = split_passages(text, "x.txt")
    assert passage.text.endswith("no merit.")
    assert passage.start == 0


def test_headings_and_boilerplate_are_not_prose():
    # A heading is not prose (it is not split into sentences), but it is no longer
    # dropped: it is a passage of its own (test_a_heading_is_a_passage_of_its_own...).
    assert not is_prose_line("Impact on Premium Users and Damages Sought")
    assert not is_prose_line("Subscribe to our newsletter for updates")
    assert not is_prose_line("18 Sources")
    assert is_prose_line("The lawsuit could be worth over a billion dollars")


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Microsoft's LinkedIn Under Fire for Alleged Data Misuse", LineKind.HEADING),
        ("Published: January 27, 2025", LineKind.HEADING),
        ("18 Sources", LineKind.HEADING),
        ("Share", LineKind.NOISE),
        ("Read more", LineKind.NOISE),
        ("Skip to content", LineKind.NOISE),
        ("Instagram logo", LineKind.NOISE),
        ("12", LineKind.NOISE),
        ("# apt-get install foo", LineKind.CODE),
        ("$ ls -la", LineKind.CODE),
        ("/var/log/dpkg {", LineKind.CODE),
        ("x-window-manager /usr/local/bin/wmaker-cvs 50", LineKind.CODE),
        ("apt-get update             ->  apt update", LineKind.CODE),
        ("Depends: libc6 (>= 2.14)", LineKind.CODE),
        ("update-alternatives --install /usr/bin/x-window-manager \\", LineKind.CODE),
        ("apt-get source foo", LineKind.FRAGMENT),
        ("followed by", LineKind.FRAGMENT),
        ("Edit /etc/apt/sources.list to add a mirror near you.", LineKind.PROSE),
        ("See https://www.debian.org/ports/ for more information about ports.", LineKind.PROSE),
        ("Debian GNU/Linux is a free operating system for your computer.", LineKind.PROSE),
        ("- 1 (single-user mode),", LineKind.PROSE),
    ],
    ids=[
        "title",
        "dateline",
        "number-and-word",
        "share",
        "read-more",
        "skip-link",
        "logo",
        "footnote-number",
        "root-prompt",
        "user-prompt",
        "config-block",
        "path-and-arguments",
        "aligned-table",
        "dependency-field",
        "continued-command",
        "bare-command",
        "broken-off-phrase",
        "sentence-with-a-path",
        "sentence-with-a-url",
        "slash-in-a-name",
        "short-list-item",
    ],
)
def test_line_kinds(line, kind):
    assert line_kind(line) is kind


def test_hard_wrapped_paragraph_is_one_paragraph_whatever_its_lines_start_with():
    text = (
        "Most users install software with the package tools shipped by\n"
        "Debian rather than by hand, because the tools track which files\n"
        "belong to which package (the same holds for modules written in\n"
        "Python). Upgrades then replace every file of a package at once.\n"
    )
    (passage,) = split_passages(text, "faq.txt")
    assert passage.text == text.strip()
    first, second = passage.sentences
    assert text[first[0] : first[1]].endswith("written in\nPython).")
    assert text[second[0] : second[1]].startswith("Upgrades")


def test_wrapped_list_items_start_new_paragraphs_and_keep_their_wrapped_lines():
    text = (
        "- full featured: Debian includes more than fifty thousand software\n"
        "  packages. Users can select which packages to install on a system.\n"
        "- free to use: There is no membership or payment required to use or\n"
        "  redistribute it. Debian is built by volunteers around the world.\n"
    )
    passages = split_passages(text, "faq.txt", max_sentences=1)
    assert [p.text for p in passages] == [
        "- full featured: Debian includes more than fifty thousand software\n  packages.",
        "Users can select which packages to install on a system.",
        "- free to use: There is no membership or payment required to use or\n  redistribute it.",
        "Debian is built by volunteers around the world.",
    ]


def test_one_paragraph_a_line_is_not_taken_for_wrapped_text():
    # News: short paragraphs of similar width, each ending like a sentence, and a
    # subtitle without a full stop over a byline.
    lines = [
        "LinkedIn accused of training its AI models on private messages",
        "By Jane Doe",
        "LinkedIn has denied all of the claims made in the lawsuit.",
        "The case was filed in California on behalf of premium users.",
        "A judge will hear it in March.",
    ]
    passages = split_passages("\n".join(lines) + "\n", "news.txt")
    assert [p.text for p in passages] == lines


def test_command_and_code_lines_are_left_out_and_prose_with_a_path_stays():
    text = (
        "To install the package, run the following command:\n\n"
        "# apt-get install hello\n"
        "$ hello --version\n\n"
        "The program reads /etc/hello.conf when it starts.\n\n"
        "/var/log/hello {\n  rotate 7\n  weekly\n}\n"
    )
    passages = split_passages(text, "faq.txt")
    assert [p.text for p in passages] == [
        "To install the package, run the following command:",
        "The program reads /etc/hello.conf when it starts.",
    ]


def test_a_heading_is_a_passage_of_its_own_and_never_merged():
    text = (
        "LinkedIn Faces Lawsuit Over Alleged Use of Private Messages\n"
        "Published: January 27, 2025\n"
        "The lawsuit was filed on Tuesday. LinkedIn denied the claims.\n"
        "\n"
        "What Happens Next\n"
        "the court will hear the case in March.\n"
    )
    passages = split_passages(text, "news.txt")
    assert [p.text for p in passages] == [
        "LinkedIn Faces Lawsuit Over Alleged Use of Private Messages",
        "Published: January 27, 2025",
        "The lawsuit was filed on Tuesday. LinkedIn denied the claims.",
        "What Happens Next",
        "the court will hear the case in March.",
    ]
    for passage in passages[:2] + passages[3:4]:
        assert passage.sentences == ((passage.start, passage.end),)


def test_a_heading_before_hard_wrapped_text_stays_apart():
    text = (
        "Installing Packages With The Package Tools\n"
        "Most users install software with the package tools shipped by\n"
        "Debian rather than by hand, because the tools track which files\n"
        "belong to which package.\n"
    )
    heading, paragraph = split_passages(text, "faq.txt")
    assert heading.text == "Installing Packages With The Package Tools"
    assert paragraph.text.startswith("Most users") and paragraph.text.endswith("package.")


def test_lines_shared_by_two_articles_are_boilerplate():
    footer = "Stay updated with the best stories from our editors every week"
    shared_long = "A syndicated paragraph. " * 10  # longer than any footer
    assert len(shared_long.strip()) > MAX_BOILERPLATE_CHARS
    first = f"The court heard the case.\n{footer}\n{shared_long}\n42\n"
    second = f"LinkedIn denied the claims.\n  {footer}  \n{shared_long}\n42\n"
    boilerplate = furniture_lines([first, second])
    assert boilerplate == {footer}
    for text in (first, second):
        passages = split_passages(text, "news.txt", boilerplate=boilerplate)
        assert not any(footer in p.text for p in passages)
        assert any(p.text.startswith("A syndicated paragraph.") for p in passages)
    # Without the corpus, the footer is just a line of the article.
    assert any(footer in p.text for p in split_passages(first, "news.txt"))


@pytest.mark.parametrize(
    "line",
    ["Share", "Menu", "Search", "Advertisement", "Read more", "Skip to content",
     "Subscribe to our newsletter for updates", "Instagram logo", "Related Posts",
     '"*" indicates required fields'],
)  # fmt: skip
def test_navigation_lines_are_left_out(line):
    text = f"The court heard the case.\n{line}\nIt adjourned until March.\n"
    assert [p.text for p in split_passages(text, "news.txt")] == [
        "The court heard the case.",
        "It adjourned until March.",
    ]


def test_a_line_repeated_within_an_article_is_kept_once():
    teaser = "LinkedIn was sued over AI training."
    text = f"{teaser}\nThe suit was filed.\n{teaser}\n"
    passages = split_passages(text, "news.txt")
    assert [p.text for p in passages] == [
        "LinkedIn was sued over AI training.",
        "The suit was filed.",
    ]


def test_wrapped_lines_join_into_one_sentence():
    text = "The court heard the case on a\nrainy Monday in March. It adjourned.\n"
    (passage,) = split_passages(text, "x.txt")
    assert passage.sentences[0] == (0, text.index("March.") + len("March."))


# --- property: random articles with unicode, blank lines, boilerplate and footnotes

LETTERS = "abcdefghijklmnopqrstuvwxyzéüñßøжλ"
word = st.text(alphabet=LETTERS, min_size=2, max_size=9)
space = st.sampled_from([" ", " ", " ", "\u00a0", "  "])


@st.composite
def sentence(draw, number: int) -> str:
    words = draw(
        st.lists(st.one_of(word, st.sampled_from(["😀", "“quoted”", "it’s"])), max_size=12)
    )
    words = [f"S{number}x", *words]  # unique, upper-case start: a real sentence start
    joined = words[0]
    for item in words[1:]:
        joined += draw(space) + item
    return joined + draw(st.sampled_from([".", "!", "?", ".”"]))


@st.composite
def article(draw):
    """Text, the (start, end) of every prose sentence placed in it, and of every heading."""
    text, sentences, headings, number = "", [], [], 0
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(
            st.sampled_from(
                ["prose", "prose", "blank", "boilerplate", "footnote", "heading", "code"]
            )
        )
        newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
        if kind == "prose":
            text += draw(st.sampled_from(["", " ", "\u00a0"]))
            for index in range(draw(st.integers(1, 4))):
                if index:
                    text += draw(space)
                body = draw(sentence(number))
                number += 1
                sentences.append((len(text), len(text) + len(body)))
                text += body
            text += draw(st.sampled_from(["", " ", "\u00a0 "]))
        elif kind == "boilerplate":
            text += draw(st.sampled_from(BOILERPLATE))
        elif kind == "footnote":
            text += draw(st.sampled_from(FOOTNOTES))
        elif kind == "heading":
            heading = f"Part {number} {draw(st.sampled_from(['Overview', 'Of The Case']))}"
            number += 1
            headings.append((len(text), len(text) + len(heading)))
            text += heading
        elif kind == "code":
            text += draw(st.sampled_from(CODE_LINES))
        text += newline
    return text, sentences, headings


@settings(max_examples=300, deadline=None)
@given(article())
def test_property_every_sentence_lands_in_exactly_cited_passages(generated):
    text, sentences, headings = generated
    passages = split_passages(text, "random.txt")
    for passage in passages:
        assert_exact(text, passage)
        assert passage.text.strip() not in BOILERPLATE + FOOTNOTES
        assert not any(line in passage.text for line in CODE_LINES)
        assert len(passage.text) <= MAX_PASSAGE_CHARS or len(passage.sentences) == 1
    spans = {(p.start, p.end) for p in passages}
    for heading in headings:
        # A heading is a passage of its own, never part of a longer one.
        assert heading in spans, text[heading[0] : heading[1]]
    for before, after in zip(passages, passages[1:], strict=False):
        assert before.end <= after.start
    for start, end in sentences:
        assert any(p.start <= start and end <= p.end for p in passages), text[start:end]
