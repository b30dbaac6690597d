"""The run flow and what it leaves: runner.py (files to a trained run and a submission), folder.py (a run folder), leaderboard.py."""
