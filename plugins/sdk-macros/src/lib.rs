//! `#[sluice_plugin::map]`: a stateless plugin written as one function.
use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemFn, parse_macro_input};

/// Makes `fn name(record: Record) -> Result<T, E>` the plugin: every record
/// goes through the function; `T` is anything that becomes an `Out` (a
/// `Record`, `Out::Drop`, `Out::Many`), `E` anything that becomes an `Error`
/// (a `&str`, a `String`, an error type), the record's failure. The plugin
/// takes no config. It is exported as the crate's component, and natively
/// it is the type `Name` (the function's name in CamelCase), for
/// `sluice_plugin::testing::run::<Name>`.
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(proc_macro2::Span::call_site(), "#[sluice_plugin::map] takes no arguments")
            .to_compile_error()
            .into();
    }
    let function = parse_macro_input!(item as ItemFn);
    let refuse = |message: &str| syn::Error::new_spanned(&function.sig, message).to_compile_error().into();
    if function.sig.inputs.len() != 1 {
        return refuse("a #[sluice_plugin::map] function takes one argument, the record");
    }
    if function.sig.asyncness.is_some() {
        return refuse("a #[sluice_plugin::map] function cannot be async: a plugin may not wait");
    }
    if !function.sig.generics.params.is_empty() {
        return refuse("a #[sluice_plugin::map] function cannot be generic: it takes a Record and returns Result<Out, Error>");
    }
    let name = &function.sig.ident;
    let type_name = format_ident!("{}", type_name(&name.to_string()));
    let doc = format!("The plugin made of [`{name}`].");
    quote! {
        #function

        #[doc = #doc]
        pub struct #type_name;

        impl ::sluice_plugin::Transform for #type_name {
            fn init(_config: &::sluice_plugin::Config) -> ::std::result::Result<Self, ::sluice_plugin::Error> {
                ::std::result::Result::Ok(#type_name)
            }

            fn transform(
                &mut self,
                record: ::sluice_plugin::Record,
            ) -> ::std::result::Result<::sluice_plugin::Out, ::sluice_plugin::Error> {
                // Named, so that a function returning something other than a
                // Result is told so.
                let result: ::std::result::Result<_, _> = #name(record);
                result.map(::std::convert::Into::into).map_err(::std::convert::Into::into)
            }
        }

        ::sluice_plugin::export!(#type_name);
    }
    .into()
}

/// The function's name in CamelCase, as a type name that collides with
/// nothing a plugin imports from the SDK.
fn type_name(function: &str) -> String {
    let camel: String = function
        .split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    const TAKEN: [&str; 8] = ["Record", "Out", "Error", "Config", "Value", "Op", "Transform", "Column"];
    if camel.is_empty() || camel.starts_with(|c: char| !c.is_alphabetic()) || TAKEN.contains(&camel.as_str()) {
        format!("Plugin{camel}")
    } else {
        camel
    }
}

#[cfg(test)]
mod tests {
    use super::type_name;

    #[test]
    fn type_names_are_valid_and_collide_with_nothing() {
        assert_eq!(type_name("skip_deletes"), "SkipDeletes");
        assert_eq!(type_name("_skip"), "Skip");
        assert_eq!(type_name("_1"), "Plugin1");
        assert_eq!(type_name("__"), "Plugin");
        assert_eq!(type_name("élan"), "Élan");
        assert_eq!(type_name("record"), "PluginRecord");
    }
}
