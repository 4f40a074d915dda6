from flux_opt.cli.main import main

main()
