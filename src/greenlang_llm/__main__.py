from greenlang_llm.cli import main

raise SystemExit(main())
