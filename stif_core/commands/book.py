"""``python -m stif_core book``: the stored notebooks built into a static HTML book (Jupyter Book)."""
from __future__ import annotations

RESUME = "the book folder is rebuilt whole by the next run"


def register(sub) -> None:
    p = sub.add_parser("book", help="build the notebooks as stored into a static HTML site (reports/book)")
    p.add_argument("--out", default="reports/book", help="the site's folder (replaced when this tool made it)")
    p.add_argument("--browser-check", metavar="SCREENSHOTS",
                   help="then open every page (and the search page) in headless Chromium, report what rendered, "
                        "fail on any fault (a console error, a failed request, a widget error, a Markdown table left "
                        "as pipes, an output wider than the column, a search result without an excerpt) and save "
                        "screenshots here")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..files import outside_data, owned_dir
    from ..lab.book import browser_check, build, check_site

    outside_data(args.out, None, "--out")
    if args.browser_check:
        outside_data(args.browser_check, None, "--browser-check")
        owned_dir(args.browser_check, "--browser-check")  # a folder of the user's files: refused before the build
    index = build(args.out)
    problems = check_site(index)
    for problem in problems:
        print("problem:", problem)
    print(f"book written to {index} ({len(problems)} problem(s) found); open it in a browser")
    if args.browser_check:
        rows = browser_check(index, args.browser_check)
        for row in rows:
            if "results" in row:
                print(f"{row['page']:<26} results {row['results']}, with a text excerpt {row['excerpts']}, console "
                      f"errors {len(row['console'])}, page errors {len(row['errors'])}, failed requests "
                      f"{len(row['failed'])}")
                continue
            print(f"{row['page']:<26} equations {row['equations']:>3} (raw {row['unrendered']}), images "
                  f"{row['images']:>3} (broken {len(row['broken'])}), widgets {row['widgets']} (drawn "
                  f"{row['drawn']}, errors {len(row['widget_errors'])}), raw tables {len(row['raw_tables'])}, wide "
                  f"outputs {len(row['wide'])}, console errors {len(row['console'])}, page errors "
                  f"{len(row['errors'])}, failed requests {len(row['failed'])}")
        found = [line for row in rows for line in row["problems"]]
        for line in found:
            print("browser problem:", line)
        print(f"browser check: {len(rows)} page(s), {len(found)} problem(s) found; screenshots in "
              f"{args.browser_check}")
        problems += found
    if problems:
        raise ValueError(f"the book has {len(problems)} problem(s), listed above")
