from eventlens.cli.main import main

main()
