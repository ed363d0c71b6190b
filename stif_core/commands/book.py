"""``python -m stif_core book``: the stored notebooks built into a static HTML book (Jupyter Book)."""
from __future__ import annotations

RESUME = "the book folder is rebuilt whole by the next run"


def register(sub) -> None:
    p = sub.add_parser("book", help="build the notebooks as stored into a static HTML site (reports/book)")
    p.add_argument("--out", default="reports/book", help="the site's folder (replaced when this tool made it)")
    p.add_argument("--browser-check", metavar="SCREENSHOTS",
                   help="then open every page in headless Chromium, report what rendered and save screenshots here")
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
        for row in browser_check(index, args.browser_check):
            print(f"{row['page']:<26} equations {row['equations']:>3} (raw {row['unrendered']}), images "
                  f"{row['images']:>3} (broken {len(row['broken'])}), widgets {row['widgets']} (drawn "
                  f"{row['drawn']}), page errors {len(row['errors'])}, failed requests {len(row['failed'])}")
    if problems:
        raise ValueError(f"the book has {len(problems)} problem(s), listed above")
