"""`harness auto NAME`: an automated competition entry, from the data to a scored submission and a report.

    plan.py      the steps, the budget (wall time and/or trials) and which model kind gets the next trial
    spaces.py    the model kinds a competition is entered with and the search space of each
    state.py     the session's progress file (resumable after a kill) and its clock
    decide.py    the submit decision: better than earlier submissions by more than the CV's noise, within
                 Kaggle's daily limit
    session.py   the steps themselves, built from train_folds, the Optuna study, the nested ensemble,
                 submit and the leaderboard
    report.py    the session's report: markdown and PNGs
    (the click command lives in harness/cli/auto.py)
"""
