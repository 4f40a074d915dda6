from flux_opt.cli import main

main()
