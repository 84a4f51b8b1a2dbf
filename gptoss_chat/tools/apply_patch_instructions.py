"""What the model is told about apply_patch, in the shape gpt-oss was trained on.

gpt-oss learned V4A patches from an instructions block in the developer message plus a function
`apply_patch` whose single argument is the patch text. The wording here is ours; the format it
describes (markers, grammar, example) must stay exactly what the model emits.
"""

APPLY_PATCH_DESCRIPTION = "Patch a file"

APPLY_PATCH_INSTRUCTIONS = """\
When a task needs files written or changed, edit them with `apply_patch`:
- Keep changes small, focused and in the style of the surrounding code.
- Write complete, working code; never leave stubs.
- Do not add copyright or license headers unless asked.

# `apply_patch` format

A patch is plain text wrapped in an envelope:

*** Begin Patch
[ one or more file sections ]
*** End Patch

Each file section starts with exactly one of these headers:

*** Add File: <path> - create a file; every line after it is its content, prefixed with +.
*** Delete File: <path> - delete a file; nothing follows.
*** Update File: <path> - change a file in place; to rename it as well, put
*** Move to: <new path> on the very next line.

An update consists of hunks. Each hunk starts with @@, optionally followed by a line of the file
(such as a class or function definition) that locates the hunk. Hunk lines begin with:
  ' ' (a space) for an unchanged context line,
  '-' for a line to remove,
  '+' for a line to add.
Give about 3 lines of context before and after each change, copied exactly from the file; do
not repeat context already shown by the previous hunk. When 3 lines are not unique in the file,
name the enclosing class or function with @@; stack several @@ lines to narrow further:

@@ class BaseClass
@@     def method(self):
 [context before]
-[old line]
+[new line]
 [context after]

A hunk that ends at the end of the file may be followed by *** End of File.

Grammar:
Patch := Begin { FileOp } End
Begin := "*** Begin Patch" NEWLINE
End := "*** End Patch" NEWLINE
FileOp := AddFile | DeleteFile | UpdateFile
AddFile := "*** Add File: " path NEWLINE { "+" line NEWLINE }
DeleteFile := "*** Delete File: " path NEWLINE
UpdateFile := "*** Update File: " path NEWLINE [ MoveTo ] { Hunk }
MoveTo := "*** Move to: " newPath NEWLINE
Hunk := "@@" [ header ] NEWLINE { HunkLine } [ "*** End of File" NEWLINE ]
HunkLine := (" " | "-" | "+") text NEWLINE

Example with several operations:

*** Begin Patch
*** Add File: hello.txt
+Hello world
*** Update File: src/app.py
*** Move to: src/main.py
@@ def greet():
-print("Hi")
+print("Hello, world!")
*** Delete File: obsolete.txt
*** End Patch

Remember:
- Every file section needs its header (Add, Update or Delete File).
- Prefix every line of a new file with +.
- Paths are relative to the workspace root; never absolute.
- The user reviews each patch before it is applied. On success the result starts with "Done!";
  otherwise it says what failed and no file was changed, so fix the patch and send it again.
"""
