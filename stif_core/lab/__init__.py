"""The project's tooling around the library: the notebooks' helpers and figures, the health report, the speed
benchmark, the papermill batch behind ``make report`` and the spread study behind nbval's tolerances. The library
(model, data, tracking, training, evaluation) never imports from here."""
