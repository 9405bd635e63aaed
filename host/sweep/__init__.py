"""`onward sweep`: many runs (rules x data sets x seeds x formats x targets) as tasks on Dask distributed, their
results in one tidy table, and the Markdown table and plots made from it.

plan.py reads a sweep file into runs; task.py is one run (what a worker executes); store.py the results file;
runner.py the Dask side; table.py the table and the plots."""
