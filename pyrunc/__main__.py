from pyrunc.cli import main

main()
