# Writes a C file that defines a NUL-terminated char array with the bytes of
# a text file, and its length.
# Usage: cmake -DINPUT=file -DOUTPUT=file.c -DNAME=symbol -P embed_text.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR byte_count "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x[0-9a-f][0-9a-f],){16}" "\\0\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}"
  "/* Generated from ${INPUT} by service/embed_text.cmake; do not edit. */\n"
  "#include <stddef.h>\n\n"
  "const char ${NAME}[] = {\n    ${bytes}0x00\n};\n"
  "const size_t ${NAME}_len = ${byte_count};\n")
