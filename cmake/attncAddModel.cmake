# attnc_add_model(<target> <file.attn> [MODEL name] [WEIGHTS file] [PREFIX p]
#                 [CPU cpu] [OPTIONS option...])
#
# Compiles <file.attn> with attnc at build time and links it into <target>:
#   - the object and the header are written to
#     ${CMAKE_CURRENT_BINARY_DIR}/attnc/<target>/<p><base>.o and .h, where
#     <base> is MODEL if given, else the file's name without .attn, and <p>
#     the PREFIX (empty without one): the program includes "<p><base>.h";
#   - they are made again when the .attn file, the WEIGHTS file or attnc
#     changes;
#   - the object is added to <target>'s sources, the header's directory to
#     its include directories (PRIVATE), and attnc::attnrt to its link
#     libraries (PRIVATE: <target> must use target_link_libraries' keyword
#     form).
# MODEL name   compiles only that model of the file (attnc --model)
# WEIGHTS file embeds the params from a safetensors file (attnc --weights)
# PREFIX p     prefixes the symbols: pNAME, pNAME_model, pNAME_scratch_size
#              (attnc --prefix), so two builds of one model link together
# CPU cpu      the target CPU (attnc --cpu); default: the build machine's, so
#              set it (e.g. x86-64-v3) for a program that runs elsewhere
# OPTIONS ...  any other attnc options, e.g. -O3, --no-fuse, --threads 0,
#              --weights-prefix encoder., --weights-dtype bf16
# Relative paths are relative to the current source directory.  Call it in
# the directory that creates <target>.
function(attnc_add_model target file)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "" "MODEL;WEIGHTS;PREFIX;CPU" "OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "attnc_add_model(${target} ${file}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "attnc_add_model: no target '${target}' (create it first, e.g. with add_executable)")
  endif()
  if(NOT ATTNC_EXECUTABLE)
    message(FATAL_ERROR "attnc_add_model: ATTNC_EXECUTABLE is not set (find_package(attnc) sets it)")
  endif()
  get_filename_component(src "${file}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(ARG_MODEL)
    set(base "${ARG_MODEL}")
  else()
    get_filename_component(base "${src}" NAME_WE)
  endif()
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/attnc/${target}")
  set(obj "${dir}/${ARG_PREFIX}${base}.o")
  set(hdr "${dir}/${ARG_PREFIX}${base}.h")
  get_property(seen GLOBAL PROPERTY ATTNC_ADD_MODEL_OUTPUTS)
  if("${obj}" IN_LIST seen)
    message(FATAL_ERROR "attnc_add_model(${target} ${file}): ${ARG_PREFIX}${base}.o is made twice for "
                        "${target}; give the calls another MODEL or PREFIX")
  endif()
  set_property(GLOBAL APPEND PROPERTY ATTNC_ADD_MODEL_OUTPUTS "${obj}")

  set(args "${src}" -o "${obj}" --header "${hdr}")
  set(depends "${src}" "${ATTNC_EXECUTABLE}")
  if(ARG_MODEL)
    list(APPEND args --model "${ARG_MODEL}")
  endif()
  if(ARG_WEIGHTS)
    get_filename_component(weights "${ARG_WEIGHTS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --weights "${weights}")
    list(APPEND depends "${weights}")
  endif()
  if(ARG_PREFIX)
    list(APPEND args --prefix "${ARG_PREFIX}")
  endif()
  if(ARG_CPU)
    list(APPEND args --cpu "${ARG_CPU}")
  endif()
  list(APPEND args ${ARG_OPTIONS})

  file(MAKE_DIRECTORY "${dir}")
  add_custom_command(
    OUTPUT "${obj}" "${hdr}"
    COMMAND "${ATTNC_EXECUTABLE}" ${args}
    DEPENDS ${depends}
    COMMENT "attnc ${file} -> ${ARG_PREFIX}${base}.o"
    VERBATIM)
  set_source_files_properties("${obj}" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
  set_source_files_properties("${hdr}" PROPERTIES GENERATED TRUE HEADER_FILE_ONLY TRUE)
  target_sources(${target} PRIVATE "${obj}" "${hdr}")
  target_include_directories(${target} PRIVATE "${dir}")
  target_link_libraries(${target} PRIVATE attnc::attnrt)
endfunction()
