from pyrunc.cli import main

main(fast_exit=True)
