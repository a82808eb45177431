from vidclf.cli import main

main()
