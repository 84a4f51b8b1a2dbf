from gptoss_chat.cli import main

raise SystemExit(main())
