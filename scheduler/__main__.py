"""`python -m scheduler`: run one scheduler process."""
from scheduler.dispatch import main

main()
