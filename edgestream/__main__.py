from edgestream.cli.main import main

main()
